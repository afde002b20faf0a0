"""The ``scheduler`` process: build the node's jobs from settings, add them to APScheduler, serve the metrics
endpoint on 127.0.0.1, run until SIGTERM/SIGINT.

Run as ``edgeworkers scheduler`` (the Procfile's ``scheduler``) or ``python -m scheduler``.
"""
from __future__ import annotations

import logging
import signal
from datetime import UTC
from typing import Any

import dramatiq
import psutil
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from edgeworkers import metrics, tasks, watchdog
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings, settings
from edgeworkers.events import EventRecorder
from edgeworkers.gc.containers import ContainerGC, ContainerGCPolicy
from edgeworkers.gc.images import ImageGC, ImageGCPolicy
from edgeworkers.messages import Message, Route, resource
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.pods.reconcile import build_agent
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.docker import DockerRuntime
from scheduler.jobs import add_jobs
from scheduler.node import DesiredPods, NodeJobs, desired_uids, node_gauges
from scheduler.usage import UsageReporter

log = logging.getLogger(__name__)

# Threads running jobs: enough that a slow one (a GC run, an orphan's grace period) never holds up the relist.
JOB_THREADS = 4
# Redis calls of the scheduler give up after this long (a stalled Redis fails a job run, never hangs it).
REDIS_TIMEOUT_S = 5.0


def pleg_message(key: str) -> dict[str, Any]:
    """The message a PLEG-triggered ``sync_pod`` carries (the worker reconciles to the desired state anyway)."""
    namespace, name = key.split("/", 1)
    return Message(route=Route(source="pleg", resource=resource(namespace, "pod", name), operation="update")).to_dict()


def build(
    config: Settings, broker: dramatiq.Broker | None = None, scheduler_class: type[BaseScheduler] = BlockingScheduler
) -> tuple[BaseScheduler, NodeJobs]:
    """The node's jobs on a ``scheduler_class`` (not started), sending syncs on ``broker`` (else one of their own)."""
    broker = broker or make_broker(config)
    client = redis_client(config, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    runtime = DockerRuntime(config.node_name, docker_host=config.docker_host, sandbox_image=config.sandbox_image)
    agent = build_agent(config, broker)

    def sync(key: str) -> None:
        tasks.send_sync(broker, key, pleg_message(key))

    events = EventRecorder(client, config.node_name)
    prober = ProbeManager(
        runtime, client, DesiredPods(agent.store), sync, events,
        workers=config.prober_workers,
    )  # fmt: skip
    container_gc = ContainerGC(
        runtime,
        lambda: desired_uids(agent.store),
        ContainerGCPolicy(
            config.container_gc_min_age_s, config.container_gc_max_per_pod_container, config.container_gc_max_containers
        ),
    )
    image_policy = ImageGCPolicy(  # refuses a bad policy now, with a clear error, as kubelet does
        config.image_gc_high_threshold_percent, config.image_gc_low_threshold_percent, config.image_gc_min_age_s
    )

    def docker_disk_usage() -> tuple[int, int]:  # the filesystem of Docker's data root, not the root filesystem
        usage = psutil.disk_usage(runtime.data_root())
        return usage.total, usage.used

    image_gc = ImageGC(runtime, client, docker_disk_usage, image_policy, config.sandbox_image, node_event=events.node)
    node = NodeJobs(
        config, runtime, client, agent, sync, prober=prober, container_gc=container_gc, image_gc=image_gc,
        usage=UsageReporter(runtime, Outbox(client), config.node_name, min_interval_s=config.usage_period_s),
    )
    scheduler = scheduler_class(executors={"default": ThreadPoolExecutor(JOB_THREADS)}, timezone=UTC)
    add_jobs(scheduler, node.table(), on_success=node.record_success)
    return scheduler, node


def serve_metrics(config: Settings, node: NodeJobs) -> None:
    """The node's metrics on 127.0.0.1:``metrics_port`` (0: none); a port in use is logged, the jobs run on."""
    if not config.metrics_port:
        return
    outbox = Outbox(node.redis)
    metrics.REGISTRY.register(metrics.CallbackCollector(lambda: node_gauges(node.store, outbox.__len__)))
    try:
        metrics.serve(config.metrics_port)
        log.info("metrics on http://%s:%d/metrics", metrics.LOOPBACK, config.metrics_port)
    except OSError as exc:  # the jobs matter more than their metrics: run on without them
        log.warning("metrics not served on %s:%d: %s", metrics.LOOPBACK, config.metrics_port, exc)


def run(config: Settings | None = None) -> None:
    config = config or settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)  # not a line per run
    try:
        scheduler, node = build(config)
    except ValueError as exc:  # a policy refused when its manager is built (image GC thresholds)
        raise SystemExit(f"scheduler: {exc}") from None
    serve_metrics(config, node)

    def stop(signum: int, _frame: Any) -> None:
        log.info("stopping (signal %d)", signum)
        scheduler.shutdown(wait=False)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    log.info("scheduler starting for node %s", config.node_name)
    watchdog.ready("pleg")
    scheduler.start()
