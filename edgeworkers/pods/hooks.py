"""Lifecycle hooks, as kubelet runs them (lifecycle/handlers.go; kuberuntime_container.go: startContainer's step 4,
killContainer, executePreStopHook).

- ``postStart`` runs right after the container starts, within the sync: the container counts as started only once
  the hook succeeded. A failure records ``FailedPostStartHook`` ("PostStartHook failed": as kubelet, the message,
  which may hold a command's output, stays out of the event), kills the container (its preStop first, as
  kubelet's killContainer does) and shows as its waiting reason ``PostStartHookError`` with kubelet's message until
  the restart policy starts it again.
- ``preStop`` runs before the stop signal, bounded by the grace period; the time it took (whole seconds) comes off
  the grace period the stop gets, never below 2 s (kubelet's minimumGracePeriodInSeconds). A failure records
  ``FailedPreStopHook`` ("PreStopHook failed") and the stop goes on.
- exec hooks run through the runtime's exec; httpGet hooks go to the pod's own address (its sandbox's IP, 127.0.0.1
  for a host-network pod), never through a proxy; a ``host`` naming another address is refused, as the prober
  refuses it, so a pod spec cannot turn the node against other machines; ``sleep`` sleeps; ``tcpSocket`` is not a
  handler kubelet runs ("Cannot run handler").

What must survive the worker lives with the container, not in memory: its preStop handler is a label (``PRE_STOP``,
its named port resolved), so a pod gone from the desired state still runs it; a postStart's progress is a record in
the pod's directory beside the termination message (``<restart>.postStart``: "running" while it runs, kubelet's
message after a failure, nothing after a success). Hook delivery is at least once, as Kubernetes documents: a
postStart a dead worker left "running" runs again on the next sync, and the status shows the container waiting
(ContainerCreating) until it has succeeded.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

from edgeworkers.k8s.meta import ObjectMeta
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import HTTPGetAction, LifecycleHandler, Pod
from edgeworkers.pods.policy import should_restart
from edgeworkers.pods.termination import message_file
from edgeworkers.runtime import labels
from edgeworkers.runtime.errors import ContainerRuntimeError, ExecTimeout
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef
from edgeworkers.volumes.errors import UnsafePath

log = logging.getLogger(__name__)

POST_START_HOOK_ERROR = "PostStartHookError"  # the container's waiting reason (kuberuntime's ErrPostStartHook)
FAILED_POST_START_HOOK = "FailedPostStartHook"
FAILED_PRE_STOP_HOOK = "FailedPreStopHook"
MIN_GRACE_S = 2  # kubelet's minimumGracePeriodInSeconds, once a preStop ran
# kubelet gives a postStart no deadline; here one is bounded so a hung hook cannot hold its pod's lock for ever (a
# delete would wait for it): past it the hook fails, and the container restarts.
POST_START_TIMEOUT_S = 300.0
LOOPBACK = "127.0.0.1"
HOOK_HEADERS = {"User-Agent": "kube-lifecycle/1.32", "Accept": "*/*"}
# No proxy (urllib3 reads none from the environment), no certificate check, no connection kept.
_HTTP = urllib3.PoolManager(cert_reqs="CERT_NONE", num_pools=8, maxsize=1, block=False)
RUNNING, FAILED = "running", "failed"

# (pod, reason, message, type): an event about the pod, as events.EventRecorder.
RecordEvent = Callable[[Pod, str, str, str], None]


class HookRefused(ValueError):
    """The hook asks for what the node does not do (another host, an unknown port name)."""


def format_pod(pod: PodRef) -> str:
    """A pod as kubelet's messages name it: ``name_namespace(uid)``."""
    return f"{pod.name}_{pod.namespace}({pod.uid})"


def port_number(port: int | str, spec: SpecContainer) -> int | None:
    """A hook's or probe's port: a number, or the name of one of the container's ports (kubelet's resolvePort);
    None for a name the container does not declare."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    return next((declared.container_port for declared in spec.ports or [] if declared.name == port), None)


def resolve_port(port: int | str, spec: SpecContainer) -> int:
    """An httpGet hook's port (``port_number``); HookRefused for an unknown name."""
    number = port_number(port, spec)
    if number is None:
        raise HookRefused(f"couldn't find port: {port} in container {spec.name}")
    return number


def pre_stop_labels(spec: SpecContainer) -> dict[str, str]:
    """The label keeping the container's preStop on the container itself, a named port resolved (none without
    one, or with a port name the container does not declare: that hook fails when it runs, as kubelet's)."""
    handler = spec.lifecycle.pre_stop if spec.lifecycle else None
    if handler is None:
        return {}
    data = handler.to_dict()
    if handler.http_get is not None:
        try:
            data["httpGet"]["port"] = resolve_port(handler.http_get.port, spec)
        except HookRefused:
            pass
    return {labels.PRE_STOP: json.dumps(data, separators=(",", ":"))}


def pre_stop_of(container: Container) -> LifecycleHandler | None:
    """The preStop handler a container's label keeps (None: none, or a label not ours)."""
    text = container.labels.get(labels.PRE_STOP)
    if not text:
        return None
    try:
        return LifecycleHandler.from_dict(json.loads(text))
    except ValueError:
        log.warning("container %s of pod %s: its preStop label is unreadable", container.name, container.pod.key)
        return None


def _exec_error(command: list[str], code: int) -> str:
    return f"command '{' '.join(command)}' exited with {code}: "


def run_handler(
    runtime: Runtime, ident: ContainerID, pod: PodRef, name: str, handler: LifecycleHandler,
    address: Callable[[], str | None], ports: SpecContainer | None, timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:  # fmt: skip
    """Run one handler; None when it succeeded, else kubelet's message. ``address``: the pod's address (asked only
    by httpGet); ``ports``: the spec naming the container's ports (None: a port from the label, a number)."""
    where = f'for Container "{name}" in Pod "{format_pod(pod)}"'
    if handler.exec is not None:
        command = list(handler.exec.command or [])
        shown = f"[{' '.join(command)}]"
        try:
            result = runtime.exec(ident, command, timeout_s)
        except ExecTimeout:
            return f'Exec lifecycle hook ({shown}) {where} failed - error: command timed out, message: ""'
        except ContainerRuntimeError as exc:
            return f'Exec lifecycle hook ({shown}) {where} failed - error: {exc}, message: ""'
        if result.exit_code == 0:
            return None
        output = json.dumps(result.output.decode(errors="replace"))
        return f"Exec lifecycle hook ({shown}) {where} failed - error: {_exec_error(command, result.exit_code)}, " \
               f"message: {output}"
    if handler.http_get is not None:
        action = handler.http_get
        error = _http_get(action, address, ports, timeout_s)
        return None if error is None else f"HTTP lifecycle hook ({action.path}) {where} failed - error: {error}"
    if handler.sleep is not None:
        sleep(min(float(handler.sleep.seconds), max(0.0, timeout_s)))
        return None
    return f"Cannot run handler: invalid handler: {json.dumps(handler.to_dict(), separators=(',', ':'))}"


def _http_get(action: HTTPGetAction, address: Callable[[], str | None], ports: SpecContainer | None, timeout_s: float) -> str | None:
    """GET the hook's URL; any response is a success (kubelet reads no status code), a refusal or a transport
    error is not."""
    try:
        target = address()
        if target is None:
            return "the pod has no IP address"
        if action.host and action.host != target:
            raise HookRefused(f"host {action.host!r} refused: lifecycle hooks reach only the pod's own address {target}")
        port = resolve_port(action.port, ports) if ports is not None else int(action.port)
    except (HookRefused, ValueError, ContainerRuntimeError) as exc:
        return str(exc)
    url = f"{action.scheme.lower()}://{target}:{port}/{action.path.lstrip('/')}"
    headers = {**HOOK_HEADERS, **{h.name: h.value for h in action.http_headers or []}}
    try:
        with urllib3.warnings.catch_warnings():
            urllib3.warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = _HTTP.request("GET", url, headers=headers, timeout=urllib3.Timeout(total=max(timeout_s, 0.1)),
                                     redirect=False, retries=False, preload_content=False)  # fmt: skip
            response.drain_conn()
            response.close()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return f'Get "{url}": {exc}'
    return None


class HookRunner:
    """Runs a pod's hooks with the runtime, records their events, keeps the postStart records under ``data_dir``
    (None: runs preStop hooks only, as the prober's liveness kills do)."""

    def __init__(
        self, runtime: Runtime, data_dir: Path | None = None, events: RecordEvent | None = None,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self._runtime = runtime
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._events = events
        self._clock = clock
        self._sleep = sleep

    # --- postStart ---------------------------------------------------------------------------------

    def post_start(self, pod: Pod, spec: SpecContainer, ident: ContainerID, ref: PodRef, restart_count: int) -> str | None:
        """Run ``spec``'s postStart on its just started instance; None when it has none or it succeeded. On failure
        the container is killed (with its preStop) and kubelet's message returned."""
        handler = spec.lifecycle.post_start if spec.lifecycle else None
        if handler is None:
            return None
        record = self._record(ref, spec.name, restart_count)
        _write(record, {"state": RUNNING})
        message = run_handler(self._runtime, ident, ref, spec.name, handler, lambda: self.address(ident), spec,
                              POST_START_TIMEOUT_S, self._sleep)  # fmt: skip
        if message is None:
            _remove(record)
            return None
        log.warning("pod %s container %s: postStart hook failed: %s", ref.key, spec.name, message)
        _write(record, {"state": FAILED, "message": message})
        self._event(pod, ref, FAILED_POST_START_HOOK, "PostStartHook failed", "Warning")
        self._event(pod, ref, "Killing", FAILED_POST_START_HOOK, "Normal")
        grace = self.run_pre_stop(ident, ref, spec.name, _pre_stop(spec), float(pod.spec.termination_grace_period_seconds),
                                  pod, spec)  # fmt: skip
        try:
            self._runtime.stop_container(ident, grace)
        except ContainerRuntimeError as exc:
            log.warning("pod %s: cannot stop container %s after its postStart failed: %s", ref.key, spec.name, exc)
        return message

    def post_start_state(self, container: Container) -> tuple[str, str] | None:
        """The postStart record of an instance: (RUNNING, "") or (FAILED, message); None when it has none."""
        record = self._record(container.pod, container.name, container.restart_count)
        try:
            data = json.loads(record.read_text()) if record is not None else None
        except (OSError, ValueError):
            return None
        state = data.get("state") if isinstance(data, dict) else None
        return (state, str(data.get("message") or "")) if state in (RUNNING, FAILED) else None

    def waiting(self, pod: Pod, containers: list[Container]) -> dict[str, tuple[str, str]]:
        """Waiting reasons the postStart records give the latest instance of each app container: ContainerCreating
        while its hook has not succeeded, PostStartHookError after it failed (while the restart policy will start
        the container again)."""
        waiting = {}
        for spec in pod.spec.containers:
            if spec.lifecycle is None or spec.lifecycle.post_start is None:
                continue
            mine = [c for c in containers if c.name == spec.name and not c.is_init and not c.is_sandbox]
            if not mine:
                continue
            latest = max(mine, key=Container.instance_order)
            state = self.post_start_state(latest)
            if state is None:
                continue
            if state[0] == RUNNING and latest.state == ContainerState.RUNNING:
                waiting[spec.name] = ("ContainerCreating", "")
            elif state[0] == FAILED and latest.state == ContainerState.EXITED and should_restart(
                    pod.spec.restart_policy or "Always", latest.exit_code or 0):
                waiting[spec.name] = (POST_START_HOOK_ERROR, state[1])
        return waiting

    def interrupted(self, pod: Pod, containers: list[Container]) -> list[tuple[SpecContainer, Container]]:
        """Running instances whose postStart a dead worker left unfinished (the caller holds the pod's lock)."""
        specs = {spec.name: spec for spec in pod.spec.containers if spec.lifecycle and spec.lifecycle.post_start}
        return [(specs[c.name], c) for c in containers
                if c.name in specs and not c.is_init and not c.is_sandbox and c.state == ContainerState.RUNNING
                and (self.post_start_state(c) or ("",))[0] == RUNNING]  # fmt: skip

    # --- preStop -----------------------------------------------------------------------------------

    def pre_stop(self, container: Container, grace_s: float, pod: Pod | None = None) -> float:
        """Run a running container's preStop (from its label) within ``grace_s``; the grace left for the stop."""
        if container.is_sandbox or container.state != ContainerState.RUNNING:
            return grace_s
        return self.run_pre_stop(container.id, container.pod, container.name, pre_stop_of(container), grace_s, pod)

    def run_pre_stop(
        self, ident: ContainerID, ref: PodRef, name: str, handler: LifecycleHandler | None, grace_s: float,
        pod: Pod | None, spec: SpecContainer | None = None,
    ) -> float:  # fmt: skip
        """kubelet's killContainer before StopContainer: the hook within the grace period, the time it took (whole
        seconds) taken off it, at least ``MIN_GRACE_S`` left."""
        if handler is None or grace_s <= 0:
            return grace_s
        log.info("pod %s container %s: running its preStop hook (grace period %gs)", ref.key, name, grace_s)
        started = self._clock()
        message = run_handler(self._runtime, ident, ref, name, handler, lambda: self.address(ident), spec, grace_s,
                              self._sleep)  # fmt: skip
        if message is not None:
            log.warning("pod %s container %s: preStop hook failed: %s", ref.key, name, message)
            self._event(pod, ref, FAILED_PRE_STOP_HOOK, "PreStopHook failed", "Warning")
        return max(grace_s - int(self._clock() - started), MIN_GRACE_S)

    # --- helpers -----------------------------------------------------------------------------------

    def address(self, ident: ContainerID) -> str | None:
        """The pod's own address as hooks reach it: 127.0.0.1 for a host-network pod, else its sandbox's IP."""
        if self._runtime.host_network(ident):
            return LOOPBACK
        return self._runtime.container_ip(ident)

    def _record(self, ref: PodRef, name: str, restart_count: int) -> Path | None:
        """Where an instance's postStart record lives (None: no data dir, or a uid or name not a plain name)."""
        if self._data_dir is None:
            return None
        try:
            path = message_file(self._data_dir, ref, name, restart_count)
        except UnsafePath:
            return None
        return path.with_name(f"{path.name}.postStart")

    def _event(self, pod: Pod | None, ref: PodRef, reason: str, message: str, kind: str) -> None:
        if self._events is not None:
            self._events(pod or Pod(metadata=ObjectMeta(name=ref.name, namespace=ref.namespace, uid=ref.uid)),
                         reason, message, kind)


def _pre_stop(spec: SpecContainer) -> LifecycleHandler | None:
    return spec.lifecycle.pre_stop if spec.lifecycle else None


def _write(path: Path | None, data: dict[str, str]) -> None:
    """Write a postStart record (its directory made as needed; failures logged, the hook runs anyway)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(path)
    except OSError as exc:
        log.warning("cannot write the postStart record %s: %s", path, exc.strerror)


def _remove(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the postStart record %s: %s", path, exc.strerror)
