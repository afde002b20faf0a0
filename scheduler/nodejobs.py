"""The node's periodic jobs and the table that wires them: PLEG relist (1 s), probes (1 s), orphan cleanup (1 min),
container GC (1 min), image GC (5 s); the intervals come from settings.

Each job is a method of ``NodeJobs``, which takes its runtime, Redis, pod workers and task sender in the constructor so
unit tests drive it with a ``FakeRuntime``, fakeredis and a list for a sender.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edgeworkers import metrics, tasks, watchdog
from edgeworkers.config import Settings
from edgeworkers.constants import KEY_JOB_LAST_SUCCESS, KEY_PLEG_LAST_RELIST
from edgeworkers.eviction.manager import EvictionManager
from edgeworkers.gc.containers import ContainerGC
from edgeworkers.gc.images import ImageGC
from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.store import POD, MetaStore, Redis
from edgeworkers.pleg import GenericPLEG, pods_with_events
from edgeworkers.pods.desired import decode_pod, resync_all
from edgeworkers.pods.reconcile import PodWorkers, remove_orphans
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.status.manager import StatusManager
from scheduler.jobs import Job
from scheduler.usage import TICK_S as USAGE_TICK_S
from scheduler.usage import UsageReporter

log = logging.getLogger(__name__)



def pleg_message(key: str) -> dict[str, Any]:
    """The message a PLEG-triggered ``sync_pod`` carries."""
    return tasks.sync_message(key, "pleg")


class NodeJobs:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        client: Redis,
        workers: PodWorkers | None,
        sync: Callable[[str], None],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        prober: ProbeManager | None = None,
        container_gc: ContainerGC | None = None,
        image_gc: ImageGC | None = None,
        usage: UsageReporter | None = None,
        eviction: EvictionManager | None = None,
    ) -> None:
        self._settings = settings
        self._redis = client
        self._workers = workers
        self._sync = sync
        self._clock = clock
        self.pleg = GenericPLEG(runtime, monotonic, settings.pleg_relist_threshold_s)
        self.redis = client
        self.store = workers.store if workers is not None else MetaStore(client)
        self.prober = prober
        self.container_gc = container_gc
        self.image_gc = image_gc
        self.usage = usage
        self.eviction = eviction
        self.ready = False

    def table(self) -> list[Job]:
        """The job table: id, function, interval (from settings), misfire grace."""
        config = self._settings
        jobs = [Job("pleg", self.relist, config.pleg_relist_period_s, misfire_grace_s=1)]
        if self.prober is not None:
            jobs.append(Job("probes", self.probe, 1.0, misfire_grace_s=1))
        if self._workers is not None:
            jobs.append(Job("orphans", self.remove_orphans, config.orphan_cleanup_period_s))
        if self._workers is not None and self._workers.broker is not None:
            # Not at start: the worker's start enqueues a sync of every desired pod already.
            jobs.append(Job("pod-sync", self.sync_desired, config.sync_frequency_s,
                            jitter_s=config.sync_frequency_s / 10, at_start=False))
        if self.container_gc is not None:
            jobs.append(Job("container-gc", self.container_gc.collect, config.container_gc_period_s))
        if self.image_gc is not None:
            jobs.append(Job("image-gc", self.image_gc.collect, config.image_gc_period_s))
        if self.usage is not None:  # a report every usage_period_s, and soon after a container starts
            jobs.append(Job("usage", self.usage.report, min(USAGE_TICK_S, config.usage_period_s)))
        if self.eviction is not None:
            jobs.append(Job("eviction", self.eviction.synchronize, config.eviction_period_s))
        return jobs

    # --- PLEG ----------------------------------------------------------------------------------

    def relist(self) -> None:
        """Relist; every pod with events gets a ``sync_pod`` task; record the relist time in Redis."""
        started = time.perf_counter()
        try:
            events = self.pleg.relist()
            metrics.RELIST_DURATION.observe(time.perf_counter() - started)
            for event in events:
                metrics.PLEG_EVENTS.labels(event.type.value).inc()
            keys = pods_with_events(events)
            try:
                for key in keys:
                    self._sync(key)
            except Exception:
                # Not every pod heard of its events: relist from scratch next time, so each is reported again.
                self.pleg.reset()
                raise
            if keys:
                log.info("pleg: %d event(s): syncing %s", len(events), ", ".join(keys))
            self._redis.set(KEY_PLEG_LAST_RELIST, repr(self._clock()))
        finally:
            metrics.PLEG_HEALTHY.set(1 if self.pleg.healthy()[0] else 0)
            watchdog.beat("pleg")  # the relist loop turns (a failed relist too: it is Docker's fault, not a hang)
        if not self.ready:
            self.ready = True
            log.info("scheduler is ready: first relist saw %d container(s)", len(self.pleg.containers))

    # --- probes --------------------------------------------------------------------------------

    def probe(self) -> None:
        """Start the due probes of the containers the last relist saw running."""
        assert self.prober is not None
        self.prober.tick(self.pleg.containers)

    # --- the periodic sync -----------------------------------------------------------------------

    def sync_desired(self) -> None:
        """Sync every desired pod (kubelet's syncFrequency), as ordinary tasks: a pod whose task was lost (Redis
        stalled between storing the pod and queueing its task; a follow-up dropped) converges within the period. A
        pod being synced already only gets one more sync, which finds nothing to do."""
        assert self._workers is not None and self._workers.broker is not None
        keys = resync_all(self._workers.store, tasks.sender(self._workers.broker), source="periodic-sync")
        metrics.PERIODIC_SYNCS.inc(len(keys))

    # --- orphans -------------------------------------------------------------------------------

    def remove_orphans(self) -> None:
        assert self._workers is not None
        removed = remove_orphans(self._workers)
        metrics.ORPHANS_REMOVED.inc(len(removed))

    # --- bookkeeping ---------------------------------------------------------------------------

    def record_success(self, job_id: str, when: float) -> None:
        self._redis.hset(KEY_JOB_LAST_SUCCESS, job_id, repr(when))


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def has_probes(raw: dict) -> bool:
    """Whether a stored pod (JSON) has a probe on an app container: the only pods the prober needs."""
    return any(c.get(kind) for c in (raw.get("spec") or {}).get("containers") or [] for kind in PROBES)


class DesiredPods:
    """The desired pods with probes, decoded once per resourceVersion (the prober asks every second). Pods without
    probes are never decoded nor kept: a decoded pod costs tens of kilobytes, and most pods have no probe."""

    def __init__(self, store: MetaStore) -> None:
        self._store = store
        self._decoded: dict[tuple[str, str], Pod] = {}

    def __call__(self) -> list[Pod]:
        decoded = {}
        for raw in self._store.each(POD, containing=b"Probe"):  # a pod without that text has no probe
            if not has_probes(raw):
                continue
            meta = raw.get("metadata") or {}
            key = (f"{meta.get('namespace')}/{meta.get('name')}", str(meta.get("resourceVersion")))
            pod = self._decoded.get(key)
            if pod is None:
                try:
                    pod = decode_pod(raw)
                except APIError:
                    continue  # invalid: the worker reports it; nothing to probe
            decoded[key] = pod
        self._decoded = decoded
        return list(decoded.values())


def desired_uids(store: MetaStore) -> set[str]:
    """The uids of the desired pods (container GC treats the containers of any other uid as a deleted pod's)."""
    return {uid for pod in store.each(POD) if (uid := (pod.get("metadata") or {}).get("uid"))}


def node_gauges(
    store: MetaStore, status: StatusManager, outbox_length: Callable[[], int], dead_letters: Callable[[], int] = int,
    events_dropped: Callable[[], int] = int,
) -> dict:
    """What the metrics endpoint reads at scrape time: pods by phase, container restarts, the outbox's length."""
    phases: dict[tuple[str, ...], float] = {}
    restarts: dict[tuple[str, ...], float] = {}
    for pod in store.each(POD):
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        last = status.get(key) or {}
        phase = last.get("phase") or "Pending"
        phases[(phase,)] = phases.get((phase,), 0) + 1
        for container in last.get("containerStatuses") or []:
            restarts[(meta.get("namespace", ""), meta.get("name", ""), container.get("name", ""))] = float(
                container.get("restartCount") or 0
            )
    return {
        "edgeworkers_pods": ("Desired pods by phase.", phases, ["phase"]),
        "edgeworkers_container_restarts": ("Restart count of each container.", restarts,
                                           ["namespace", "pod", "container"]),  # fmt: skip
        "edgeworkers_outbox_length": ("Items waiting in the status outbox.", {(): float(outbox_length())}, []),
        "edgeworkers_tasks_dead_lettered": ("Pod tasks given up by the node's workers (logged with their pod).",
                                            {(): float(dead_letters())}, []),  # fmt: skip
        "edgeworkers_outbox_events_dropped": ("Events dropped from the outbox past its cap, the oldest first.",
                                              {(): float(events_dropped())}, []),  # fmt: skip
    }
