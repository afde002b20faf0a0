"""The composition root: once per process, the settings, one Redis client, the MetaManager store, outbox and client, the
status manager and the probe results, one Docker runtime, the broker and the event recorder (``Services``); and the
roles built from them, each receiving what it uses: the pod worker, the periodic jobs, the bridge and the node's
endpoint. ``edgeworkers.agent`` and the CLI only choose which roles a process runs.

No role builds a client of its own: this module (and the tests) alone imports ``redisconn`` and ``runtime.docker``
(the import-linter contracts in pyproject.toml keep it so). One runtime serves every role: its followed logs read
with a timeout of their own (``LOG_FOLLOW_TIMEOUT_S``), so a hung engine still fails every other call within
``DOCKER_TIMEOUT_S``, and the engine's status (what the node's heartbeat asks) within ``runtime_status_timeout_s``. Each role's code is imported when the role is built: a process loads only what it runs (a
bridge alone never loads the pod models, about 8 MiB).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

import dramatiq
import redis

from edgeworkers import constants, tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.events.recorder import EventRecorder
from edgeworkers.messages import Send
from edgeworkers.metamanager.client import MetaClient
from edgeworkers.metamanager.crypto import node_cipher
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.remote import CloudRemote
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.docker import DockerRuntime, log_rotation
from edgeworkers.status.manager import StatusManager
from edgeworkers.status.proberesults import RedisProbeResults
from edgeworkers.wakeup import WakingRedisBroker

if TYPE_CHECKING:
    from edgeworkers.pods.reconcile import PodWorkers

log = logging.getLogger(__name__)

# Every Docker call but a followed log gives up after this long (a hung engine fails the call, not the process).
DOCKER_TIMEOUT_S = 60.0
# A followed log of a quiet container sends nothing for as long as it stays quiet: its read must not end it.
LOG_FOLLOW_TIMEOUT_S = 24 * 3600.0
# The periodic jobs' threads: enough that a slow one (a GC run, an orphan's grace period) never holds up the relist.
JOB_THREADS = 4
# The line `ops/up`, the tests and the benchmarks wait for: the `dramatiq` command's own, for a worker.
WORKER_READY = "Worker process is ready for action."
# How long a stopping worker waits for its running tasks (Dramatiq's own default: its CLI stops a worker so).
STOP_TIMEOUT_MS = 600_000


@dataclass
class Services:
    """What the roles of one process share: one of each."""

    settings: Settings
    redis: redis.Redis
    runtime: DockerRuntime
    store: MetaStore
    outbox: Outbox
    meta: MetaClient
    status: StatusManager
    probes: RedisProbeResults
    events: EventRecorder
    broker: WakingRedisBroker

    @property
    def send(self) -> Send:
        """Enqueue a message's pod task on this process's broker."""
        return tasks.sender(self.broker)

    def close(self) -> None:
        self.broker.close()
        self.runtime.close()
        self.redis.close()


def build(settings: Settings) -> Services:
    """The process's services. Nothing connects yet: Redis, Docker and the cloud are reached on first use."""
    timeout = settings.redis_socket_timeout_s
    client = redis_client(settings, socket_timeout=timeout, socket_connect_timeout=timeout)
    runtime = DockerRuntime(
        settings.node_name, settings.docker_host, settings.sandbox_image, DOCKER_TIMEOUT_S,
        follow_timeout_s=LOG_FOLLOW_TIMEOUT_S, status_timeout_s=settings.runtime_status_timeout_s,
        **log_rotation(settings),
    )  # fmt: skip
    store = MetaStore(client, node_cipher(settings.data_dir))
    outbox = Outbox(client, max_events=settings.outbox_max_events)
    return Services(
        settings=settings,
        redis=client,
        runtime=runtime,
        store=store,
        outbox=outbox,
        meta=MetaClient(store, outbox, CloudRemote(settings)),
        status=StatusManager(store, outbox),
        probes=RedisProbeResults(client),
        events=EventRecorder(client, settings.node_name, outbox=outbox),
        broker=make_broker(settings, client),
    )


# --- the pod worker -------------------------------------------------------------------------------


def pod_workers(services: Services, *, follow_ups: bool = True) -> PodWorkers:
    """What the pod tasks need (``follow_ups=False``: no follow-up syncs are scheduled, as for a one-off command)."""
    from edgeworkers.pods.backoff import RedisBackoffStore
    from edgeworkers.pods.reconcile import PodWorkers
    from edgeworkers.pods.sync import PodSyncer

    settings, client = services.settings, services.redis

    def wake(key: str) -> None:  # a pod that waited for another task's pull of its image: the pull is over
        tasks.send_sync(services.broker, key, tasks.sync_message(key, "imagepuller"))

    syncer = PodSyncer(
        services.runtime, RedisBackoffStore(client), settings, meta=services.meta, probe_results=services.probes.get,
        events=services.events, image_locks=client, wake=wake if follow_ups else None,
    )  # fmt: skip
    return PodWorkers(client, services.store, services.status, syncer, services.broker if follow_ups else None,
                      settings)  # fmt: skip


def declare_actors(services: Services) -> dict[str, dramatiq.Actor]:
    """The pod actors on the process's broker (what the `dramatiq` command's worker processes load)."""
    from edgeworkers import actors

    return actors.declare(services.broker, pod_workers(services))


def start_worker(services: Services, threads: int) -> dramatiq.Worker:
    """A Dramatiq worker of ``threads`` threads on the pod queues, started as the `dramatiq` command starts one in
    each worker process (``process_boot`` first: it starts the TimeLimit middleware's monitor), after a sync of every
    desired pod is enqueued."""
    declare_actors(services)
    resync_desired(services)
    services.broker.emit_after("process_boot")
    worker = dramatiq.Worker(services.broker, queues=set(tasks.QUEUE_OF.values()), worker_threads=threads)
    worker.start()
    log.info("%s (%d threads)", WORKER_READY, threads)
    return worker


def stop_worker(worker: dramatiq.Worker) -> None:
    """Stop as the `dramatiq` command stops a worker process: running tasks finish, prefetched ones are requeued."""
    worker.stop(STOP_TIMEOUT_MS)
    worker.broker.close()


def resync_desired(services: Services) -> list[str]:
    """Enqueue a sync of every desired pod, as the workers start (see ``desired.resync_all``); a Redis away is logged:
    the workers wait for it anyway."""
    from edgeworkers.pods import desired

    try:
        keys = desired.resync_all(services.store, services.send)
    except (redis.RedisError, dramatiq.errors.BrokerConnectionError) as exc:
        log.warning("desired pods not resynced: cannot reach the agent's Redis: %s", exc)
        return []
    log.info("enqueued a sync of %d desired pod(s)", len(keys))
    return keys


# --- the periodic jobs ----------------------------------------------------------------------------


def periodic_jobs(services: Services, scheduler_class: type | None = None) -> tuple[Any, Any]:
    """The node's jobs on a ``scheduler_class`` (APScheduler's, not started; a blocking one by default) and the
    ``NodeJobs`` behind them. Raises ValueError for a policy its manager refuses (image GC thresholds)."""
    import psutil
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    from edgeworkers.eviction.manager import EvictionManager
    from edgeworkers.eviction.policy import CONTAINERS, IMAGES, thresholds_from
    from edgeworkers.eviction.signals import observe
    from edgeworkers.gc.containers import ContainerGC, ContainerGCPolicy
    from edgeworkers.gc.images import ImageGC, ImageGCPolicy
    from edgeworkers.prober.manager import ProbeManager
    from scheduler.jobs import add_jobs
    from scheduler.nodejobs import DesiredPods, NodeJobs, desired_uids, pleg_message
    from scheduler.usage import UsageReporter

    settings, runtime, store = services.settings, services.runtime, services.store

    def sync(key: str) -> None:
        tasks.send_sync(services.broker, key, pleg_message(key))

    prober = ProbeManager(runtime, services.probes, DesiredPods(store), sync, services.events,
                          workers=settings.prober_workers)  # fmt: skip
    container_gc = ContainerGC(
        runtime,
        lambda: desired_uids(store),
        ContainerGCPolicy(settings.container_gc_min_age_s, settings.container_gc_max_per_pod_container,
                          settings.container_gc_max_containers),  # fmt: skip
    )
    image_policy = ImageGCPolicy(  # refuses a bad policy now, with a clear error, as kubelet does
        settings.image_gc_high_threshold_percent, settings.image_gc_low_threshold_percent, settings.image_gc_min_age_s
    )

    def docker_disk_usage() -> tuple[int, int]:  # the filesystem of Docker's data root, not the root filesystem
        usage = psutil.disk_usage(runtime.data_root())
        return usage.total, usage.used

    image_gc = ImageGC(runtime, services.redis, docker_disk_usage, image_policy, settings.sandbox_image,
                       node_event=services.events.node)  # fmt: skip
    workers = pod_workers(services)
    reclaim = {  # eviction's node-level reclaim: every dead container, every unused image (kubelet's)
        CONTAINERS: ContainerGC(runtime, lambda: desired_uids(store), ContainerGCPolicy(0, 0, -1)).collect,
        IMAGES: image_gc.delete_unused,
    }
    eviction = EvictionManager(  # thresholds_from refuses a bad threshold now, with the setting's name
        workers, runtime, thresholds_from(settings), lambda: observe(settings.data_dir, runtime.data_root), reclaim,
        services.events, enabled=settings.eviction_enabled,
    )
    node = NodeJobs(
        settings, runtime, services.redis, workers, sync, prober=prober, container_gc=container_gc,
        image_gc=image_gc,
        usage=UsageReporter(runtime, services.outbox, settings.node_name, min_interval_s=settings.usage_period_s),
        eviction=eviction,
    )
    scheduler = (scheduler_class or BlockingScheduler)(executors={"default": ThreadPoolExecutor(JOB_THREADS)},
                                                       timezone=UTC)  # fmt: skip
    add_jobs(scheduler, node.table(), on_success=node.record_success)
    return scheduler, node


def serve_metrics(services: Services) -> None:
    """The node's metrics on 127.0.0.1:``metrics_port`` (0: none); a port in use is logged, the jobs run on."""
    from edgeworkers import metrics
    from edgeworkers.metamanager.memory import gauges as redis_memory
    from scheduler.nodejobs import node_gauges

    port = services.settings.metrics_port
    if not port:
        return
    def dead_letters() -> int:
        return int(services.redis.get(constants.KEY_DEAD_LETTERS) or 0)

    metrics.REGISTRY.register(metrics.CallbackCollector(
        lambda: node_gauges(services.store, services.status, services.outbox.__len__, dead_letters,
                            services.outbox.events_dropped)))
    metrics.REGISTRY.register(metrics.CallbackCollector(lambda: redis_memory(services.redis)))
    try:
        metrics.serve(port)
        log.info("metrics on http://%s:%d/metrics", metrics.LOOPBACK, port)
    except OSError as exc:  # the jobs matter more than their metrics: run on without them
        log.warning("metrics not served on %s:%d: %s", metrics.LOOPBACK, port, exc)


# --- the bridge and the node's endpoint ------------------------------------------------------------


def bridge_loops(services: Services) -> Any:
    """The factory of the bridge's loops (and the node's heartbeat) from the cloud's API client, for
    ``bridge.run.run_bridge``: they share the process's store, status manager, broker and view of the mirror pods."""
    from edgeworkers.bridge.configs import ConfigRefresher
    from edgeworkers.bridge.mirror import MirrorPods
    from edgeworkers.bridge.uplink import Uplink
    from edgeworkers.bridge.watcher import PodWatcher
    from edgeworkers.metamanager.epoch import Epoch
    from edgeworkers.node.registration import NodeRegistrar
    from edgeworkers.node.status import gather_facts
    from edgeworkers.pleg import recorded_health_error

    settings, store, status, send = services.settings, services.store, services.status, services.send

    def pleg_error() -> str:  # the PLEG's health, from the relist time it records in Redis
        return recorded_health_error(services.redis, time.time(), settings.pleg_relist_threshold_s)

    def loops(api: Any) -> dict[str, Any]:
        mirrors = MirrorPods(api, store, status, settings.node_name)
        watcher = PodWatcher(api, store, send, settings.node_name, mirrors, status,
                             epoch=Epoch(services.redis, settings.data_dir))
        registrar = NodeRegistrar(
            api, lambda: gather_facts(settings, services.runtime.version, pleg_error, services.runtime.data_root),
            interval_s=settings.node_status_update_frequency_s,
        )
        return {
            "node-heartbeat": registrar.run,
            "pod-watcher": watcher.run,
            "redis-epoch": watcher.run_epoch_check,
            "uplink": Uplink(api, services.outbox, mirrors).run,
            "mirror-pods": mirrors.run,
            "config-refresher": ConfigRefresher(api, store, send, pods_listed=watcher.listed.is_set).run,
            "status-resync": status.run_resync,
        }

    return loops


async def serve_node(services: Services, stop: threading.Event | None = None) -> None:
    """The node's endpoint and the bridge's threads until SIGTERM or SIGINT, or until ``stop`` is set."""
    from edgeworkers.node.serve import serve

    await serve(services.settings, services.runtime, bridge_loops(services), stop)


def run_node(services: Services, stop: threading.Event | None = None) -> None:
    asyncio.run(serve_node(services, stop))
