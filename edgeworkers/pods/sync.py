"""PodSyncer: reconcile Docker to one pod's desired state (kubelet's SyncPod and KillPod, trimmed).

``sync`` is idempotent and safe to re-run after a crash half-way: every decision is made from what the
runtime lists (labels carry each container's pod, name, restart count and spec hash), so a created but
never started container is started rather than duplicated, and stray duplicates are removed. Failures of
one container (image, config, create) become its waiting reason in the status, never an exception; only
``RuntimeUnavailable`` escapes, for the caller to retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import redis

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.pods.admission import AdmissionPolicy, admit, admit_host_ports, refused_status
from edgeworkers.pods.backoff import BackoffEntry, BackoffStore
from edgeworkers.pods.convert import ConfigError, container_config, ephemeral_config, pod_ref, sandbox_config
from edgeworkers.pods.etcfiles import NodeDNS, write_etc_files
from edgeworkers.pods.hooks import HookRunner, pre_stop_labels
from edgeworkers.pods.hostports import pod_port_mappings
from edgeworkers.pods.images import CONTAINER_CREATING, ImagePuller, Pulled
from edgeworkers.pods.lock import ensure_held
from edgeworkers.pods.orphans import orphan_keys
from edgeworkers.pods.policy import (
    CRASH_LOOP_BACK_OFF,
    BackoffPolicy,
    PodActions,
    StartAction,
    compute_pod_actions,
    latest_instances,
)
from edgeworkers.pods.remembered import is_terminal, remembered_containers
from edgeworkers.pods.termination import BadMessagePath, TerminationMessages, with_message_file
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, Mount
from edgeworkers.status.podstatus import compute_pod_status
from edgeworkers.status.proberesults import ProbeResults
from edgeworkers.volumes.builders import NoSources, Sources
from edgeworkers.volumes.downward import PodFacts
from edgeworkers.volumes.errors import VolumeError
from edgeworkers.volumes.manager import ReadyVolume, VolumeManager

log = logging.getLogger(__name__)

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
RUN_CONTAINER_ERROR = "RunContainerError"
MAX_PARALLEL_STOPS = 16
# Runs a container's preStop hook before its stop: (container, grace period) -> the grace period left.
PreStop = Callable[[Container, float], float]


@dataclass(frozen=True)
class SyncResult:
    """The pod's status after the sync (None for a pod being killed) and when to sync it again (None: no need);
    ``gone``: every container and volume of a killed pod is gone (a deletion may be confirmed)."""

    status: dict[str, Any] | None
    requeue_after: float | None
    gone: bool = False


class _Outcome:
    """What a sync met along the way: waiting reasons for the status, and the earliest look-again; and the outcomes
    of the pulls its task made before taking the pod's lock (``images``)."""

    def __init__(self, actions: PodActions, pulled: dict[str, Pulled] | None = None) -> None:
        self.waiting = dict(actions.waiting)
        self.requeue_after = actions.requeue_after
        self.pulled = pulled or {}

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
        meta: Sources | None = None,
        volumes: VolumeManager | None = None,
        probe_results: Callable[[list[str]], ProbeResults] | None = None,
        events: Callable[..., None] | None = None,
        image_locks: redis.Redis | None = None,
        wake: Callable[[str], None] | None = None,
    ) -> None:
        self._runtime = runtime
        # The prober's results by container id (readiness, startup), for the status; None: no prober.
        self._probe_results = probe_results
        self._backoff = backoff
        self._settings = settings
        self._clock = clock
        self._policy = BackoffPolicy.from_settings(settings)
        # Configmaps and secrets (the MetaClient) for env and volumes; the volume manager sets volumes up.
        self._meta = meta
        self._admission = AdmissionPolicy.from_settings(settings)
        self._volumes = volumes or VolumeManager(settings.data_dir, meta or NoSources(), clock=clock,
                                                 host_paths=self._admission.host_paths)
        self._node = PodFacts(host_ip=settings.node_host)
        self._dns = NodeDNS.from_settings(settings)
        self._pids_limit = settings.pod_pids_limit if settings.pod_pids_limit > 0 else None
        # Records a Warning event about a pod: (pod, reason, message, kind) as events.EventRecorder; None: none.
        self._events = events
        # Pulls per pull policy and back-off; ``image_locks`` (Redis) makes tasks pull each image once, ``wake`` syncs a
        # pod (by key) that waited for another task's pull.
        self._images = ImagePuller(runtime, backoff, self._policy, clock, self._note, image_locks,
                                   secrets=meta, wake=wake)
        # Lifecycle hooks (postStart after a start, preStop before each stop) and termination messages.
        self._hooks = HookRunner(runtime, settings.data_dir, events)
        self._messages = TerminationMessages(settings.data_dir, runtime.logs)

    def sync(
        self, key: str, pod: Pod | None, previous_status: dict[str, Any] | None = None,
        pulled: dict[str, Pulled] | None = None,
    ) -> SyncResult:  # fmt: skip
        """Bring the containers of pod ``key`` ("namespace/name") to ``pod``; None or a deletionTimestamp
        kills every container of the key, whatever its uid. ``previous_status`` (else ``pod.status``) keeps
        the conditions' transition times and the start time stable. ``pulled``: what ``prefetch_images`` pulled
        for this sync (an image it did not pull is pulled here, if its policy wants it)."""
        if pod is None or pod.metadata.deletion_timestamp:
            grace = self._settings.default_grace_period_s if pod is None else _grace_period(pod)
            done = self.kill_pod(key, grace, uid=pod.metadata.uid if pod is not None else None)
            return SyncResult(None, None if done else self._policy.initial_s, gone=done)
        previous_status = previous_status or _as_dict(pod.status)  # the node's memory, else the cloud's copy
        if is_terminal(previous_status):  # kubelet never runs a Succeeded or Failed (or evicted) pod again
            ours = [c for c in self._containers_of(key) if c.pod.uid == pod.metadata.uid]
            stopped = stop_containers(self._runtime, ours, 0)
            return SyncResult(previous_status, None if stopped else self._policy.initial_s)
        refusal = admit(pod, self._admission)
        if refusal is not None:  # nothing of it runs: not a directory, not a container
            return self._refuse(key, pod, *refusal, previous_status)
        ports_refusal = self._admit_host_ports(key, pod, previous_status)
        if ports_refusal is not None:
            reason, message, event = ports_refusal
            return self._refuse(key, pod, reason, message, previous_status, event)
        containers = self._containers_of(key)
        actions = self._plan(pod, containers, previous_status)
        outcome = _Outcome(actions, pulled)
        for name, (reason, _) in actions.waiting.items():
            if reason == CRASH_LOOP_BACK_OFF:
                self._note(pod, "BackOff", f"Back-off restarting failed container {name} in pod "
                           f"{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})", "Warning")  # fmt: skip
        for container in actions.stop:
            if not container.is_sandbox:
                self._note(pod, "Killing", f"Stopping container {container.name}")
        grace = float(pod.spec.termination_grace_period_seconds)
        ensure_held()  # before each step: a sync whose pod lock was lost stops here (pods.lock)
        pre_stop = partial(self._hooks.pre_stop, pod=pod)
        stopped = stop_containers(self._runtime, actions.stop, grace, pre_stop)
        removed = remove_containers(self._runtime, actions.remove, grace, pre_stop)
        if not (stopped and removed):
            outcome.look_again(self._policy.initial_s)
        if removed and (actions.remove or not self._volumes.has_dir(pod.metadata.uid or "")):
            # An old pod's volumes go only once its containers are gone; some never had one (a new uid looks).
            remaining = {c.pod.uid for c in containers if c not in actions.remove}
            old = {c.pod.uid for c in actions.remove} | self._volumes.uids_of(key)
            self._forget(old - remaining - {pod.metadata.uid})
        ours = [c for c in containers if c.pod.uid == pod.metadata.uid and c not in actions.remove]
        ensure_held()
        volumes = self._setup_volumes(pod, actions, outcome)  # every sync: configmap and secret updates reach files
        sandbox = self._sandbox(pod, ours, actions, outcome) if volumes is not None else None
        if sandbox is not None and volumes is not None and actions.start:
            facts = self._facts(pod, sandbox)
            etc = self._etc_files(pod, sandbox, actions, outcome)
            for start in actions.start if etc is not None else []:
                ensure_held()
                self._start(pod, sandbox, start, actions.backoff.get(start.name), outcome, volumes, facts, etc)
        for spec, container in self._hooks.interrupted(pod, [c for c in ours if c not in actions.stop]):
            ensure_held()  # a postStart a dead worker left unfinished runs again (delivery is at least once)
            if self._hooks.post_start(pod, spec, container.id, container.pod, container.restart_count) is not None:
                outcome.look_again(self._policy.initial_s)
        ensure_held()
        return SyncResult(self._status(pod, outcome, previous_status), outcome.requeue_after)

    def prefetch_images(self, key: str, pod: Pod, previous_status: dict[str, Any] | None = None) -> dict[str, Pulled]:
        """Pull, without the pod's lock, the images of the containers a sync of ``pod`` would create now (as far as
        the runtime's containers and its last status tell without the lock); the outcomes by image, for
        ``sync(..., pulled=)``."""
        previous_status = previous_status or _as_dict(pod.status)
        if pod.metadata.deletion_timestamp or is_terminal(previous_status) or admit(pod, self._admission) is not None:
            return {}
        actions = self._plan(pod, self._containers_of(key), previous_status)
        return self._images.prefetch(pod, [_spec(pod, start) for start in actions.start if start.reuse is None])

    def orphans(self, desired_keys: set[str]) -> list[str]:
        """The keys of pods with containers on this node that are not in ``desired_keys``."""
        return orphan_keys(self._runtime.list_containers(), desired_keys)

    def kill_pod(self, key: str, grace_period_s: float, uid: str | None = None) -> bool:
        """Stop every container of ``key`` (app and init containers in parallel, then the sandbox), remove
        them, then forget the pods' back-off state and volumes (of ``uid`` too, which may have volumes and no
        container yet). False if a container still runs or a volume mount remained: nothing of the volumes is
        removed then.

        A stopped container the engine cannot remove (dockerd 20.10 after a restart under churn: ``device or resource
        busy`` on its root filesystem) does not hold the deletion, as kubelet confirms a deletion once nothing of the
        pod runs and its volumes are gone: the container GC removes it later, when the engine can."""
        containers = self._containers_of(key)
        if not stop_containers(self._runtime, containers, grace_period_s, self._hooks.pre_stop):
            return False
        if not all([_tolerant(self._runtime.remove_container, c) for c in containers]):
            log.warning("pod %s: stopped containers the engine could not remove are left to the container GC", key)
        uids = {c.pod.uid for c in containers} | self._volumes.uids_of(key) | ({uid} if uid else set())
        return self._forget(uids)

    # --- steps ---------------------------------------------------------------------------------

    def _containers_of(self, key: str) -> list[Container]:
        return self._runtime.list_containers(key)

    def _plan(self, pod: Pod, containers: list[Container], previous_status: dict[str, Any] | None) -> PodActions:
        """The actions for ``containers``, with the containers that the last status remembers and Docker lost."""
        remembered = remembered_containers(pod, containers, previous_status)
        return compute_pod_actions(pod, containers + remembered, self._clock(), self._backoff, self._policy)

    def _forget(self, uids: set[str]) -> bool:
        """Drop what the agent kept for pods whose containers are gone: back-off state, volumes (unmounted, then
        removed; a uid that is not a plain name touches nothing). False when a volume mount remained."""
        done = True
        for uid in uids:
            self._backoff.forget_pod(uid)
            done = self._volumes.teardown(uid) and done
        return done

    def _admit_host_ports(
        self, key: str, pod: Pod, previous: dict[str, Any] | None
    ) -> tuple[str, str, str] | None:
        """The NodePorts refusal of a pod asking hostPorts another pod holds (pods without any cost nothing)."""
        if not pod_port_mappings(pod):
            return None
        return admit_host_ports(pod, key, self._runtime.list_containers(), previous or _as_dict(pod.status))

    def _refuse(
        self, key: str, pod: Pod, reason: str, message: str, previous: dict[str, Any] | None, event: str = "",
    ) -> SyncResult:  # fmt: skip
        """A pod the node's admission refuses: Failed with the reason, none of its containers left running; the
        Warning event says ``event`` (default: the message)."""
        log.warning("pod %s refused: %s", key, event or message)
        self._warn(pod, reason, event or message)
        done = self.kill_pod(key, float(pod.spec.termination_grace_period_seconds))
        started = (previous or {}).get("startTime") or format_time(self._clock())
        status = refused_status(pod, reason, message, self._settings.node_host, started)
        return SyncResult(status, None if done else self._policy.initial_s)

    def _setup_volumes(self, pod: Pod, actions: PodActions, outcome: _Outcome) -> dict[str, ReadyVolume] | None:
        """The pod's volumes, set up (or brought up to date); None, with the containers to start waiting on the
        reason, when one is not ready (the sync looks again: a configmap that arrives starts the pod)."""
        try:
            return self._volumes.setup(pod, self._node)
        except VolumeError as exc:
            log.info("pod %s: volumes not ready: %s", pod.key, exc)
            self._warn(pod, "FailedMount", f"MountVolume.SetUp failed: {exc}")
            for start in actions.start:
                outcome.wait(start.name, exc.reason, str(exc), self._policy.initial_s)
            # Nothing starts before the volumes are ready, so a sooner look (an init container's 1 s poll) would only
            # ask the cloud again; the bridge's update brings the pod back as soon as a missing object arrives.
            outcome.requeue_after = self._policy.initial_s
            return None

    def _warn(self, pod: Pod, reason: str, message: str) -> None:
        """A Warning event about the pod (messages name objects and paths, never a secret's value)."""
        if self._events is not None:
            self._events(pod, reason, message, "Warning")

    def _note(self, pod: Pod, reason: str, message: str, kind: str = "Normal") -> None:
        """An event about the pod with kubelet's reason and message (Created, Started, Pulled, BackOff, Killing ...)."""
        if self._events is not None:
            self._events(pod, reason, message, kind)

    def _facts(self, pod: Pod, sandbox: ContainerID) -> PodFacts:
        """What env ``fieldRef`` may ask beyond the spec; the pod IP is read only when some variable wants it."""
        wanted = {"status.podIP", "status.podIPs"}
        if not any(var.value_from and var.value_from.field_ref and var.value_from.field_ref.field_path in wanted
                   for container in pod.spec.all_containers for var in container.env or []):
            return self._node
        ip = self._pod_ip(pod, sandbox)
        return replace(self._node, pod_ips=(ip,) if ip else ())

    def _pod_ip(self, pod: Pod, sandbox: ContainerID) -> str | None:
        if pod.spec.host_network:
            return self._settings.node_host
        try:
            return self._runtime.container_ip(sandbox)
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot read its IP: %s", pod.key, exc)
            return None

    def _etc_files(self, pod: Pod, sandbox: ContainerID, actions: PodActions, outcome: _Outcome) -> list[Mount] | None:
        """The mounts of the pod's resolv.conf and hosts files (``pods.etcfiles``), written now; its DNS warnings
        recorded when its sandbox is new (as kubelet's, once per sandbox). None, the containers to start waiting on
        the reason, when the files cannot be written."""
        try:
            mounts, warnings = write_etc_files(self._volumes.pod_dir(pod), pod, self._pod_ip(pod, sandbox), self._dns)
        except (OSError, VolumeError) as exc:
            message = f"cannot write the pod's resolv.conf and hosts files: {getattr(exc, 'strerror', None) or exc}"
            for start in actions.start:
                outcome.wait(start.name, CREATE_CONTAINER_CONFIG_ERROR, message, self._policy.initial_s)
            return None
        for reason, message in warnings if actions.create_sandbox else []:
            self._warn(pod, reason, message)
        return mounts

    def _sandbox(self, pod: Pod, ours: list[Container], actions: PodActions, outcome: _Outcome) -> ContainerID | None:
        """The running sandbox's id, creating it when the actions say so (None when it cannot be had)."""
        if not actions.create_sandbox:
            running = [c for c in ours if c.is_sandbox and c.state == ContainerState.RUNNING]
            return running[0].id if running else None
        try:
            return self._runtime.create_sandbox(sandbox_config(pod))
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot create its sandbox: %s", pod.key, exc)
            for spec in pod.spec.all_containers:
                outcome.wait(
                    spec.name, CONTAINER_CREATING, f"Failed to create pod sandbox: {exc}", self._policy.initial_s
                )
            return None

    def _start(
        self, pod: Pod, sandbox: ContainerID, start: StartAction, backoff: BackoffEntry | None, outcome: _Outcome,
        volumes: dict[str, ReadyVolume] | None = None, facts: PodFacts | None = None, etc: list[Mount] | None = None,
    ) -> None:
        """Create and start one container; a failure becomes its waiting reason."""
        spec = _spec(pod, start)
        retry = self._policy.initial_s
        try:
            if start.reuse is not None:
                ident = start.reuse.id
            else:
                # The image first (a pull may take minutes), as kubelet's startContainer: subPaths and hostPaths are
                # opened, checked and bound right before the container is created, not before the pull.
                if not self._ensure_image(pod, spec, outcome):
                    return
                config = container_config(
                    pod, spec, self._settings.data_dir, start.restart_count, start.is_init, sources=self._meta,
                    facts=facts or self._node, volumes=volumes, bind_subpath=partial(self._volumes.bind, pod),
                    warn=partial(self._warn, pod), pids_limit=self._pids_limit, etc_files=etc or (),
                    image_user=partial(self._runtime.image_user, spec.image or ""),
                    apparmor=self._admission.apparmor_enabled,
                )
                config = with_message_file(replace(config, labels={**config.labels, **pre_stop_labels(spec)}),
                                           self._settings.data_dir, pod_ref(pod), spec, start.restart_count)
                if start.is_ephemeral:
                    config = ephemeral_config(config, spec, self._containers_of(pod.key))
                ident = self._runtime.create_container(sandbox, pod_ref(pod), config)
                self._note(pod, "Created", f"Created container {spec.name}")
        except (ConfigError, BadMessagePath) as exc:
            outcome.wait(spec.name, CREATE_CONTAINER_CONFIG_ERROR, str(exc), retry)
            return
        except VolumeError as exc:
            outcome.wait(spec.name, exc.reason, str(exc), retry)
            return
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot create container %s: %s", pod.key, spec.name, exc)
            self._note(pod, "Failed", f"Error: {exc}", "Warning")
            outcome.wait(spec.name, CREATE_CONTAINER_ERROR, str(exc), retry)
            return
        try:
            self._runtime.start_container(ident)
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot start container %s: %s", pod.key, spec.name, exc)
            self._note(pod, "Failed", f"Error: {exc}", "Warning")
            outcome.wait(spec.name, RUN_CONTAINER_ERROR, str(exc), retry)
            return
        self._note(pod, "Started", f"Started container {spec.name}")
        if backoff is not None:
            self._backoff.put(pod.metadata.uid or "", spec.name, backoff)
        if self._hooks.post_start(pod, spec, ident, pod_ref(pod), start.restart_count) is not None:
            outcome.look_again(retry)  # killed: the status says PostStartHookError (``hooks.waiting``)

    def _ensure_image(self, pod: Pod, spec: SpecContainer, outcome: _Outcome) -> bool:
        """Make the container's image present per its pull policy (``images``); False (and a waiting reason) if not."""
        present, waiting = self._images.ensure(pod, spec, outcome.pulled)
        if waiting is not None:
            outcome.wait(spec.name, *waiting)
        return present

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
                log.warning("pod %s: cannot read its IP: %s", pod.key, exc)
        if previous is None and pod.status is not None:
            previous = pod.status.to_dict()
        running = [c.id.id for c in containers if not c.is_sandbox and c.state == ContainerState.RUNNING]
        probes = self._probe_results(running) if self._probe_results and running else None
        waiting = {**self._hooks.waiting(pod, containers), **outcome.waiting}
        messages = self._messages.of(containers, pod)
        return compute_pod_status(pod, containers, waiting, self._clock(), pod_ip, host_ip, previous, probes, messages)


def _spec(pod: Pod, start: StartAction) -> SpecContainer:
    specs = pod.spec.init_containers if start.is_init else pod.spec.containers
    if start.is_ephemeral:
        specs = pod.spec.ephemeral_containers
    return next(spec for spec in specs or [] if spec.name == start.name)


def _as_dict(status: Any) -> dict[str, Any] | None:
    return status.to_dict() if status is not None else None


def _grace_period(pod: Pod) -> float:
    """The deletion's grace period, else the pod's terminationGracePeriodSeconds."""
    grace = pod.metadata.deletion_grace_period_seconds
    return float(pod.spec.termination_grace_period_seconds if grace is None else grace)


def _tolerant(method: Callable[..., None], container: Container, *args: Any) -> bool:
    """Call a runtime method on a container; False (logged) when the engine refuses, RuntimeUnavailable escapes."""
    try:
        method(container.id, *args)
    except ContainerRuntimeError as exc:
        log.warning("pod %s: %s of container %s failed: %s", container.pod.key, method.__name__, container.name, exc)
        return False
    return True


def stop_containers(
    runtime: Runtime, containers: list[Container], grace_period_s: float, pre_stop: PreStop | None = None
) -> bool:
    """SIGTERM then SIGKILL after the grace period: app and init containers in parallel, then the sandboxes; each
    after its ``pre_stop`` hook (``hooks.HookRunner.pre_stop``), which gives the grace left. False when the engine
    refused one (logged; the caller looks again later)."""
    running = [c for c in containers if c.state in (ContainerState.RUNNING, ContainerState.UNKNOWN)]

    def stop(container: Container) -> bool:
        grace = pre_stop(container, grace_period_s) if pre_stop is not None else grace_period_s
        return _tolerant(runtime.stop_container, container, grace)

    done = []
    for group in ([c for c in running if not c.is_sandbox], [c for c in running if c.is_sandbox]):
        if group:
            with ThreadPoolExecutor(max_workers=min(len(group), MAX_PARALLEL_STOPS)) as pool:
                done += pool.map(stop, group)
    return all(done)


def remove_containers(
    runtime: Runtime, containers: list[Container], grace_period_s: float, pre_stop: PreStop | None = None
) -> bool:
    """Stop (as ``stop_containers``), then remove, every one of ``containers``."""
    stopped = stop_containers(runtime, containers, grace_period_s, pre_stop)
    return all([stopped, *(_tolerant(runtime.remove_container, c) for c in containers)])
