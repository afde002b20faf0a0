"""The probe manager: on each 1 s tick, find the due probes of the node's running containers and run them on a
bounded thread pool; keep each probe's state, publish result changes, act on liveness failures.

- Due probes are found from the PLEG's last relist (no extra runtime call) and the desired pods; a probe whose run
  is still in flight is not started again, so a hanging probe (bounded by its own timeout anyway) never delays
  another, as long as the pool has threads to spare.
- Results are kept per container instance and published on every run (idempotent: a write that failed is made good
  by the next run): readiness and startup to the probe results store (``status.proberesults``, which the pod status
  reads); when the stored result changed, a ``sync`` of the pod shows the change within a second. A container first
  seen (every container, after the prober restarted) starts from the result stored for it, if any
  (``policy.ProbeState.new``): no ready pod flaps on a restart, and a failing probe turns it as it would have.
- Exec probes run through per-container shell sessions (``execsession``): a run is one fork in the container rather
  than a Docker exec; the sessions of containers no longer probed are closed on the tick.
- A liveness (or startup) probe that turns to failure records ``Unhealthy`` and ``Killing`` events and stops the
  container, after its preStop hook (``pods.hooks``); the PLEG then sees it die and the pod's restart policy
  restarts it. A stop that failed leaves the probe running, and its next failed run kills again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from edgeworkers import metrics
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Pod, Probe
from edgeworkers.pods.hooks import HookRunner
from edgeworkers.prober.execsession import ExecSessions
from edgeworkers.prober.handlers import LOOPBACK, Executor, run_probe
from edgeworkers.prober.policy import (
    LIVENESS,
    READINESS,
    STARTUP,
    ProbeConfig,
    ProbeState,
    Result,
    gated,
    is_due,
    kill_failed,
    kills,
    record,
    start_run,
)
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerState
from edgeworkers.status.proberesults import ProbeResults, ProbeResultsStore

log = logging.getLogger(__name__)

# Event(pod, reason, message, type): what the node did, for `kubectl describe pod`.
RecordEvent = Callable[[Pod, str, str, str], None]
# The scheduler ticks every second: a run due within half a tick starts on this one (policy.is_due).
TICK_SLACK_S = 0.5
EVENT_MESSAGE_MAX = 512
_TITLE = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}


def _short(message: str) -> str:
    """A probe's output as an event's message: its first ``EVENT_MESSAGE_MAX`` characters (an exec probe's output
    may be 10 KiB, and every failed run is an event)."""
    return message if len(message) <= EVENT_MESSAGE_MAX else message[:EVENT_MESSAGE_MAX] + " (truncated)"


def _probe_of(spec: SpecContainer, kind: str) -> Probe | None:
    return {LIVENESS: spec.liveness_probe, READINESS: spec.readiness_probe, STARTUP: spec.startup_probe}[kind]


class ProbeManager:
    def __init__(
        self,
        runtime: Runtime,
        results: ProbeResultsStore,
        pods: Callable[[], list[Pod]],
        sync: Callable[[str], None],
        record_event: RecordEvent | None = None,
        clock: Callable[[], float] = time.time,
        workers: int = 16,
        exec_sessions: bool = True,
    ) -> None:
        self._runtime = runtime
        self._sessions = ExecSessions(runtime) if exec_sessions else None
        self._executor: Executor = self._sessions or runtime
        self._results = results
        self._pods = pods
        self._sync = sync
        self._record_event = record_event or (lambda pod, reason, message, kind: None)
        self._hooks = HookRunner(runtime, events=self._record_event)  # preStop before a liveness kill
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], ProbeState] = {}
        self._addresses: dict[str, str | None] = {}  # sandbox id -> pod IP
        self.runs = 0
        self.late_runs = 0  # started more than 1 s after they were due

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._sessions is not None:
            self._sessions.close()

    def tick(self, containers: list[Container]) -> int:
        """Start every due probe of the running ``containers``; forget the probes of containers gone. Returns the
        number of runs started."""
        now = self._clock()
        pods = {pod.metadata.uid: pod for pod in self._pods()}
        sandboxes = {c.pod.uid: c for c in containers if c.is_sandbox and c.state == ContainerState.RUNNING}
        probed = []
        for container in containers:
            pod = pods.get(container.pod.uid)
            if container.is_sandbox or container.is_init or container.state != ContainerState.RUNNING or pod is None:
                continue
            spec = next((s for s in pod.spec.containers if s.name == container.name), None)
            if spec is not None:
                probed.append((container, pod, spec))
        seeds = self._seeds(probed)
        live: set[tuple[str, str]] = set()
        started = 0
        for container, pod, spec in probed:
            begun = (container.started_at or container.created_at).timestamp() if (
                container.started_at or container.created_at) else now
            stored = seeds.get(container.id.id, {})
            with self._lock:
                startup = self._state(container, spec, STARTUP, live, stored)
                deleting = pod.metadata.deletion_timestamp is not None
                for kind in (STARTUP, LIVENESS, READINESS):
                    state = self._state(container, spec, kind, live, stored)
                    probe = _probe_of(spec, kind)
                    if state is None or probe is None or gated(kind, startup):
                        continue
                    if deleting and kind != READINESS:  # kubelet: a pod being deleted is not restarted by its probes
                        continue
                    config = ProbeConfig.from_probe(probe)
                    if not is_due(state, config, begun, now, TICK_SLACK_S):
                        continue
                    late = start_run(state, config, begun, now)
                    self.runs += 1
                    self.late_runs += late > 1.0
                    started += 1
                    sandbox = sandboxes.get(container.pod.uid)
                    self._pool.submit(self._run, pod, container, spec, kind, probe, config, state, sandbox)
        self._forget(live)
        alive = {sandbox.id.id for sandbox in sandboxes.values()}
        self._addresses = {ident: ip for ident, ip in self._addresses.items() if ident in alive}
        return started

    def _seeds(self, probed: list[tuple[Container, Pod, SpecContainer]]) -> ProbeResults:
        """The stored results of the containers this prober has no state of yet (new ones, or all of them after the
        prober restarted), to seed their readiness and startup states from: one read of the store."""
        with self._lock:
            known = {ident for ident, _ in self._states}
        fresh = [container.id.id for container, _, spec in probed
                 if container.id.id not in known and (spec.readiness_probe or spec.startup_probe)]  # fmt: skip
        if not fresh:
            return {}
        try:
            return self._results.get(fresh)
        except Exception as exc:  # noqa: BLE001 - the store away: the probes start from their initial results
            log.info("cannot read the stored probe results: %s", exc)
            return {}

    def _state(
        self, container: Container, spec: SpecContainer, kind: str, live: set, stored: Mapping[str, bool]
    ) -> ProbeState | None:
        if _probe_of(spec, kind) is None:
            return None
        key = (container.id.id, kind)
        live.add(key)
        if key not in self._states:
            self._states[key] = ProbeState.new(kind, stored.get(kind))
        return self._states[key]

    def _forget(self, live: set[tuple[str, str]]) -> None:
        with self._lock:
            gone = [key for key in self._states if key not in live]
            for key in gone:
                del self._states[key]
        if self._sessions is not None and self._sessions.retain({ident for ident, _ in live}):
            self._pool.submit(self._sessions.close_dropped)
        for ident in {ident for ident, _ in gone}:
            try:
                self._results.forget(ident)
            except Exception as exc:  # noqa: BLE001 - the store away: the results go with the container anyway
                log.info("cannot forget the probe results of %s: %s", ident, exc)

    def _address(self, pod: Pod, sandbox: Container | None) -> str | None:
        if pod.spec.host_network:
            return LOOPBACK
        if sandbox is None:
            return None
        if sandbox.id.id not in self._addresses:
            try:
                self._addresses[sandbox.id.id] = self._runtime.container_ip(sandbox.id)
            except ContainerRuntimeError:
                return None
        return self._addresses[sandbox.id.id]

    def _run(
        self, pod: Pod, container: Container, spec: SpecContainer, kind: str, probe: Probe, config: ProbeConfig,
        state: ProbeState, sandbox: Container | None,
    ) -> None:  # fmt: skip
        try:
            ok, message = run_probe(self._executor, container.id, spec, probe, self._address(pod, sandbox), config.timeout_s)
        except Exception as exc:  # noqa: BLE001 - a probe's fault is the probe's failure, never the pool's
            ok, message = False, f"{type(exc).__name__}: {exc}"
        metrics.PROBE_RESULTS.labels(kind, "successful" if ok else "failed").inc()
        with self._lock:
            changed = record(state, config, ok)
            success = state.result == Result.SUCCESS
            current = self._states.get((container.id.id, kind)) is state  # not forgotten (its container gone)
        if not ok:  # kubelet records every failed run; the events aggregate (count) at the cloud
            self._record_event(pod, "Unhealthy", f"{_TITLE[kind]} probe failed: {_short(message)}".strip(), "Warning")
        if changed is not None:
            log.info("pod %s container %s: %s probe %s", pod.key, spec.name, kind, changed.value)
        try:
            if changed is not None and kills(kind, changed):
                self._kill(pod, container, spec, kind, probe, state)
                self._sync(pod.key)
            elif kind != LIVENESS and current and self._results.set(container.id.id, kind, success):  # every run
                self._sync(pod.key)
        except Exception as exc:  # noqa: BLE001
            log.warning("pod %s container %s: acting on its %s probe failed: %s", pod.key, spec.name, kind, exc)

    def _kill(self, pod: Pod, container: Container, spec: SpecContainer, kind: str, probe: Probe, state: ProbeState):
        state.done = True  # this instance is going: no more runs
        verb = "liveness" if kind == LIVENESS else "startup"
        self._record_event(
            pod, "Killing", f"Container {spec.name} failed {verb} probe, will be restarted", "Normal"
        )
        grace = probe.termination_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        try:
            self._runtime.stop_container(container.id, self._hooks.pre_stop(container, float(grace or 0), pod))
        except Exception:
            with self._lock:
                kill_failed(state)  # still there: probed again, and killed again by the next failed run
            raise
