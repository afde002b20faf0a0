"""The kinds beyond the core's few (Deployment, Job, Service, ...): their defaulting and validation, each kept in its
controller's module and listed here so ``handlers.py`` applies them as the API server's registry strategies do, and
their controllers, which ``app.py`` starts.

A kind not listed gets no defaults and only the object-metadata validation.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from edgeworkers.cloud import daemonset, deployment, endpoints, garbagecollector, job, replicaset, services
from edgeworkers.cloud.controller import Controller, TokenBucket
from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s.status import FieldError

Defaulter = Callable[[dict], dict]
Validator = Callable[[dict, "dict | None"], list[FieldError]]  # (new, old or None on create) -> errors

# Created with an empty status whatever the body says (their registry strategies' PrepareForCreate); the defaulter
# runs after, and may set one (a Service's ``loadBalancer: {}``).
FRESH_STATUS = ("replicationcontrollers", "services", "deployments", "replicasets", "daemonsets", "jobs")

DEFAULTERS: dict[str, Defaulter] = {
    "replicasets": replicaset.default_replica_set,
    "replicationcontrollers": replicaset.default_replication_controller,
    "deployments": deployment.default_deployment,
    "daemonsets": daemonset.default_daemonset,
    "jobs": job.default_job,
    "services": services.default_service,
    "endpoints": endpoints.default_endpoints,
}
VALIDATORS: dict[str, Validator] = {
    "replicasets": replicaset.validate_replica_set,
    "replicationcontrollers": replicaset.validate_replication_controller,
    "deployments": deployment.validate_deployment,
    "daemonsets": daemonset.validate_daemonset,
    "jobs": job.validate_job,
    "services": services.validate_service,
}


class Allocator(Protocol):
    """What a kind takes from a finite pool when stored (a Service's cluster IP and node ports), as kube's registry
    hooks ``BeginCreate``/``BeginUpdate`` do: run before validation, on create (``old`` None) and update."""

    def allocate(self, new: dict, old: dict | None, dry_run: bool) -> dict: ...


ALLOCATORS: dict[str, Callable[[Store, Settings], Allocator]] = {"services": services.ServiceAllocator}

ControllerFactory = Callable[[Store, Hub, Clock, Settings, TokenBucket], Controller]
CONTROLLERS: list[ControllerFactory] = [
    replicaset.replica_sets,
    replicaset.replication_controllers,
    deployment.controller,
    daemonset.make_controller,
    job.make_controller,
    endpoints.EndpointsController.make,
    garbagecollector.make_controller,
]
