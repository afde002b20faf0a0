"""The kinds beyond the core's few (Deployment, Job, Service, ...): their defaulting and validation, each kept in its
controller's module and listed here so ``handlers.py`` applies them as the API server's registry strategies do, and
their controllers, which ``app.py`` starts.

A kind not listed gets no defaults and only the object-metadata validation.
"""
from __future__ import annotations

from collections.abc import Callable

from edgeworkers.cloud.controller import Controller
from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s.status import FieldError

Defaulter = Callable[[dict], dict]
Validator = Callable[[dict, "dict | None"], list[FieldError]]  # (new, old or None on create) -> errors

# Created with an empty status whatever the body says (their registry strategies' PrepareForCreate); the defaulter
# runs after, and may set one (a Service's ``loadBalancer: {}``).
FRESH_STATUS = ("replicationcontrollers", "services", "deployments", "replicasets", "daemonsets", "jobs")

DEFAULTERS: dict[str, Defaulter] = {}
VALIDATORS: dict[str, Validator] = {}

ControllerFactory = Callable[[Store, Hub, Clock, Settings], Controller]
CONTROLLERS: list[ControllerFactory] = []
