"""PodSyncer: reconcile Docker to one pod's desired state (kubelet's SyncPod and KillPod, trimmed).

``sync`` is idempotent and safe to re-run after a crash half-way: every decision is made from what the
runtime lists (labels carry each container's pod, name, restart count and spec hash), so a created but
never started container is started rather than duplicated, and stray duplicates are removed. Failures of
one container (image, config, create) become its waiting reason in the status, never an exception; only
``RuntimeUnavailable`` escapes, for the caller to retry.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.backoff import PULL_SCOPE, BackoffEntry, BackoffStore, pull_key
from edgeworkers.pods.convert import ConfigError, container_config, host_dirs, pod_ref, sandbox_config
from edgeworkers.pods.orphans import orphan_keys
from edgeworkers.pods.podstatus import compute_pod_status
from edgeworkers.pods.policy import (
    BackoffPolicy,
    PodActions,
    StartAction,
    backoff_delay,
    compute_pod_actions,
    latest_instances,
)
from edgeworkers.runtime.errors import ContainerRuntimeError, ImagePullError, RuntimeUnavailable
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerID, ContainerState

log = logging.getLogger(__name__)

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
RUN_CONTAINER_ERROR = "RunContainerError"
CONTAINER_CREATING = "ContainerCreating"
MAX_PARALLEL_STOPS = 16


@dataclass(frozen=True)
class SyncResult:
    """The pod's status after the sync (None once it is gone) and when to sync it again (None: no need)."""

    status: dict[str, Any] | None
    requeue_after: float | None


class _Outcome:
    """What a sync met along the way: waiting reasons for the status, and the earliest look-again."""

    def __init__(self, actions: PodActions) -> None:
        self.waiting = dict(actions.waiting)
        self.requeue_after = actions.requeue_after

    def wait(self, name: str, reason: str, message: str, retry_after: float) -> None:
        self.waiting[name] = (reason, message)
        self.look_again(retry_after)

    def look_again(self, seconds: float) -> None:
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


class PodSyncer:
    def __init__(
        self,
        runtime: Runtime,
        backoff: BackoffStore,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._backoff = backoff
        self._settings = settings
        self._clock = clock
        self._policy = BackoffPolicy.from_settings(settings)

    def sync(self, key: str, pod: Pod | None, previous_status: dict[str, Any] | None = None) -> SyncResult:
        """Bring the containers of pod ``key`` ("namespace/name") to ``pod``; None or a deletionTimestamp
        kills every container of the key, whatever its uid. ``previous_status`` (else ``pod.status``) keeps
        the conditions' transition times and the start time stable."""
        if pod is None or pod.metadata.deletion_timestamp:
            grace = self._settings.default_grace_period_s if pod is None else _grace_period(pod)
            done = self.kill_pod(key, grace)
            return SyncResult(None, None if done else self._policy.initial_s)
        containers = self._containers_of(key)
        actions = compute_pod_actions(pod, containers, self._clock(), self._backoff, self._policy)
        outcome = _Outcome(actions)
        grace = float(pod.spec.termination_grace_period_seconds)
        if not (
            stop_containers(self._runtime, actions.stop, grace)
            & remove_containers(self._runtime, actions.remove, grace)
        ):
            outcome.look_again(self._policy.initial_s)
        self._forget({c.pod.uid for c in actions.remove if c.pod.uid != pod.metadata.uid})
        ours = [c for c in containers if c.pod.uid == pod.metadata.uid and c not in actions.remove]
        sandbox = self._sandbox(pod, ours, actions, outcome)
        if sandbox is not None and actions.start:
            self._make_dirs(pod)
            for start in actions.start:
                self._start(pod, sandbox, start, actions.backoff.get(start.name), outcome)
        return SyncResult(self._status(pod, outcome, previous_status), outcome.requeue_after)

    def orphans(self, desired_keys: set[str]) -> list[str]:
        """The keys of pods with containers on this node that are not in ``desired_keys``."""
        return orphan_keys(self._runtime.list_containers(), desired_keys)

    def kill_pod(self, key: str, grace_period_s: float) -> bool:
        """Stop every container of ``key`` (app and init containers in parallel, then the sandbox), remove
        them, and forget the pods' back-off state and volume directories. False if some remained."""
        containers = self._containers_of(key)
        done = remove_containers(self._runtime, containers, grace_period_s)
        self._forget({c.pod.uid for c in containers})
        return done

    # --- steps ---------------------------------------------------------------------------------

    def _containers_of(self, key: str) -> list[Container]:
        return self._runtime.list_containers(key)

    def _forget(self, uids: set[str]) -> None:
        """Drop what the agent kept for pods that are gone: back-off state and volume directories."""
        for uid in uids:
            self._backoff.forget_pod(uid)
            shutil.rmtree(self._settings.data_dir / "pods" / uid, ignore_errors=True)

    def _sandbox(self, pod: Pod, ours: list[Container], actions: PodActions, outcome: _Outcome) -> ContainerID | None:
        """The running sandbox's id, creating it when the actions say so (None when it cannot be had)."""
        if not actions.create_sandbox:
            running = [c for c in ours if c.is_sandbox and c.state == ContainerState.RUNNING]
            return running[0].id if running else None
        try:
            return self._runtime.create_sandbox(sandbox_config(pod))
        except RuntimeUnavailable:
            raise
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot create its sandbox: %s", pod.key, exc)
            for spec in pod.spec.all_containers:
                outcome.wait(
                    spec.name, CONTAINER_CREATING, f"Failed to create pod sandbox: {exc}", self._policy.initial_s
                )
            return None

    def _make_dirs(self, pod: Pod) -> None:
        for path in host_dirs(pod, self._settings.data_dir):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # the container's create then reports what is wrong
                log.warning("pod %s: cannot make volume directory %s: %s", pod.key, path, exc)

    def _start(
        self, pod: Pod, sandbox: ContainerID, start: StartAction, backoff: BackoffEntry | None, outcome: _Outcome
    ) -> None:
        """Create and start one container; a failure becomes its waiting reason."""
        spec = _spec(pod, start)
        retry = self._policy.initial_s
        try:
            if start.reuse is not None:
                ident = start.reuse.id
            else:
                config = container_config(pod, spec, self._settings.data_dir, start.restart_count, start.is_init)
                if not self._ensure_image(pod, spec, outcome):
                    return
                ident = self._runtime.create_container(sandbox, pod_ref(pod), config)
        except ConfigError as exc:
            outcome.wait(spec.name, CREATE_CONTAINER_CONFIG_ERROR, str(exc), retry)
            return
        except RuntimeUnavailable:
            raise
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot create container %s: %s", pod.key, spec.name, exc)
            outcome.wait(spec.name, CREATE_CONTAINER_ERROR, str(exc), retry)
            return
        try:
            self._runtime.start_container(ident)
        except RuntimeUnavailable:
            raise
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot start container %s: %s", pod.key, spec.name, exc)
            outcome.wait(spec.name, RUN_CONTAINER_ERROR, str(exc), retry)
            return
        if backoff is not None:
            self._backoff.put(pod.metadata.uid or "", spec.name, backoff)

    def _ensure_image(self, pod: Pod, spec: SpecContainer, outcome: _Outcome) -> bool:
        """Make the container's image present per its pull policy; False (and a waiting reason) if it is not.

        No registry may be reachable at the edge: under ``Always`` a failed pull falls back to a local copy
        (and is not tried again before its back-off expires); without one, ErrImagePull then ImagePullBackOff.
        """
        image, policy = spec.image or "", spec.pull_policy
        present = self._runtime.image_present(image)
        if policy == "Never" or (present and policy == "IfNotPresent"):
            if not present:
                message = f'Container image "{image}" is not present with pull policy of Never'
                outcome.wait(spec.name, ERR_IMAGE_NEVER_PULL, message, self._policy.initial_s)
            return present
        now = self._clock()
        entry = self._backoff.get(PULL_SCOPE, pull_key(image))
        if entry is not None and now < entry.since + entry.delay:
            if not present:
                remaining = entry.since + entry.delay - now
                outcome.wait(spec.name, IMAGE_PULL_BACK_OFF, f'Back-off pulling image "{image}"', remaining)
            return present
        try:
            self._runtime.pull_image(image)
        except ImagePullError as exc:
            delay = backoff_delay(entry.delay if entry else None, 0.0, self._policy)
            self._backoff.put(PULL_SCOPE, pull_key(image), BackoffEntry(delay=delay, since=now))
            if present:
                log.info("pod %s: pulling %s failed, using the local image: %s", pod.key, image, exc)
                return True
            outcome.wait(spec.name, ERR_IMAGE_PULL, str(exc), delay)
            return False
        if entry is not None:
            self._backoff.delete(PULL_SCOPE, pull_key(image))
        return True

    def _status(self, pod: Pod, outcome: _Outcome, previous: dict[str, Any] | None) -> dict[str, Any]:
        """The pod's status from a fresh list; dead instances beyond the last one per container are removed."""
        containers = [c for c in self._runtime.list_containers(pod.key) if c.pod.uid == pod.metadata.uid]
        _, extra = latest_instances([c for c in containers if not c.is_sandbox])
        containers = [c for c in containers if c not in extra or not _tolerant(self._runtime.remove_container, c)]
        host_ip = self._settings.node_host
        pod_ip = None
        sandbox = next((c for c in containers if c.is_sandbox and c.state == ContainerState.RUNNING), None)
        if sandbox is not None and pod.spec.host_network:
            pod_ip = host_ip
        elif sandbox is not None:
            try:
                pod_ip = self._runtime.container_ip(sandbox.id)
            except ContainerRuntimeError as exc:
                if isinstance(exc, RuntimeUnavailable):
                    raise
                log.warning("pod %s: cannot read its IP: %s", pod.key, exc)
        if previous is None and pod.status is not None:
            previous = pod.status.to_dict()
        return compute_pod_status(pod, containers, outcome.waiting, self._clock(), pod_ip, host_ip, previous)


def _spec(pod: Pod, start: StartAction) -> SpecContainer:
    specs = pod.spec.init_containers if start.is_init else pod.spec.containers
    return next(spec for spec in specs or [] if spec.name == start.name)


def _grace_period(pod: Pod) -> float:
    """The deletion's grace period, else the pod's terminationGracePeriodSeconds."""
    grace = pod.metadata.deletion_grace_period_seconds
    return float(pod.spec.termination_grace_period_seconds if grace is None else grace)


def _tolerant(method: Callable[..., None], container: Container, *args: Any) -> bool:
    """Call a runtime method on a container; False (logged) when the engine refuses, RuntimeUnavailable escapes."""
    try:
        method(container.id, *args)
    except RuntimeUnavailable:
        raise
    except ContainerRuntimeError as exc:
        log.warning("pod %s: %s of container %s failed: %s", container.pod.key, method.__name__, container.name, exc)
        return False
    return True


def stop_containers(runtime: Runtime, containers: list[Container], grace_period_s: float) -> bool:
    """SIGTERM then SIGKILL after the grace period: app and init containers in parallel, then the sandboxes.
    False when the engine refused one (logged; the caller looks again later)."""
    running = [c for c in containers if c.state in (ContainerState.RUNNING, ContainerState.UNKNOWN)]
    done = []
    for group in ([c for c in running if not c.is_sandbox], [c for c in running if c.is_sandbox]):
        if group:
            with ThreadPoolExecutor(max_workers=min(len(group), MAX_PARALLEL_STOPS)) as pool:
                done += pool.map(lambda c: _tolerant(runtime.stop_container, c, grace_period_s), group)
    return all(done)


def remove_containers(runtime: Runtime, containers: list[Container], grace_period_s: float) -> bool:
    """Stop (as ``stop_containers``), then remove, every one of ``containers``."""
    stopped = stop_containers(runtime, containers, grace_period_s)
    return all([stopped, *(_tolerant(runtime.remove_container, c) for c in containers)])
