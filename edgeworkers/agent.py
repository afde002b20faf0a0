"""`edgeworkers agent`: the whole edge in one process (``Procfile.lite``), for small machines, or all of it but the pod
worker (``--no-worker``: the ``Procfile``, beside `edgeworkers worker`); and `edgeworkers worker` with one process,
which runs its Dramatiq worker in-process instead of under the `dramatiq` command's master.

Why the Procfile's full mode is two edge processes, not one per part: each Python process of the edge holds 45-55 MB of
imports (pydantic, redis-py, the Docker SDK, aiohttp) before any pod, and the bridge and the scheduler import the same
ones; apart they took 146-161 MB with the worker and 100 pods, together 110-114 (ops/bench/footprint.py). The worker
stays apart: it is the part to scale (``worker_processes``) and the one whose tasks a time limit may kill.

The agent runs the bridge (the node's endpoint, registration and heartbeat, the cloud bridge's threads), the
scheduler's jobs (the same job table, on a ``BackgroundScheduler``) and a Dramatiq worker with N threads on the pod
queues, all on one broker. Its guarantees are the multi-process mode's, since they live in Redis, not in a process:
a task in flight when the process is killed stays unacknowledged and is redelivered once the worker's heartbeat has
expired; one pod's tasks never overlap (``pods.lock``). SIGTERM or SIGINT stops it: the bridge (no new tasks), the
scheduler, then the worker, which finishes its running tasks and gives the prefetched ones back to their queues.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

import dramatiq
import typer

from edgeworkers import watchdog
from edgeworkers.config import settings
from edgeworkers.pods import cli as pods_cli
from edgeworkers.tasks import sender

log = logging.getLogger("edgeworkers.agent")

# How long a stopping worker waits for its running tasks (Dramatiq's own default: its CLI stops a worker so).
STOP_TIMEOUT_MS = 600_000
# The line `ops/up`, the tests and the benchmarks wait for: the `dramatiq` command's own, for a worker.
WORKER_READY = "Worker process is ready for action."


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)  # not a line per job run


def pod_broker() -> dramatiq.Broker:
    """The process's one broker, with the pod actors bound to it: ``edgeworkers.actors`` builds it on import
    (``make_broker``, which makes it Dramatiq's global one)."""
    from edgeworkers import actors

    return actors.broker


def start_worker(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    """A Dramatiq worker of ``threads`` threads on the pod queues, started as the `dramatiq` command starts one in
    each worker process (``process_boot`` first: it starts the TimeLimit middleware's monitor); the desired pods are
    resynced first, as `edgeworkers worker` does."""
    pods_cli.resync_desired(sender(broker))
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues=set(pods_cli.QUEUES), worker_threads=threads)
    worker.start()
    log.info("%s (%d threads)", WORKER_READY, threads)
    return worker


def stop_worker(worker: dramatiq.Worker) -> None:
    """Stop as the `dramatiq` command stops a worker process: running tasks finish, prefetched ones are requeued."""
    worker.stop(STOP_TIMEOUT_MS)
    worker.broker.close()


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def agent(
    threads: int | None = typer.Option(None, "--threads", "-t", help="Worker threads (default: config)."),
    with_worker: bool = typer.Option(True, "--worker/--no-worker",
                                     help="Run the pod worker here (--no-worker: `edgeworkers worker` runs it)."),
) -> None:
    """Run the bridge, the scheduler's jobs and (unless --no-worker) the pod worker in this one process (see the
    module's docstring)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from edgeworkers.node.cli import _serve
    from scheduler.main import build, serve_metrics

    config = settings()
    _logging()
    broker = pod_broker()
    # Until the bridge's event loop takes over SIGTERM and SIGINT, either stops the start-up cleanly.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        scheduler, node = build(config, broker, BackgroundScheduler)
    except ValueError as exc:  # a policy refused when its manager is built (image GC thresholds)
        raise SystemExit(f"agent: {exc}") from None
    worker = None
    try:
        if with_worker:
            worker = start_worker(broker, threads or config.worker_threads)
        serve_metrics(config, node)
        scheduler.start()
        workers = f"{threads or config.worker_threads} worker threads" if with_worker else "no worker (edgeworkers worker)"
        log.info("agent is ready: node %s, %s", config.node_name, workers)
        watchdog.ready("pleg", "bridge")  # READY=1, then WATCHDOG=1 while the PLEG and the bridge's loop beat
        # From here a signal only sets ``stop``: raised while asyncio.run builds its loop, it would leave it half made.
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: stop.set())
        asyncio.run(_serve(config, broker, stop))  # until SIGTERM or SIGINT
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal stops at once
        log.info("agent stopping")
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if worker is not None:
            stop_worker(worker)
        log.info("agent stopped")


def worker(
    processes: int | None = typer.Option(None, "--processes", "-p", help="Worker processes (default: config)."),
    threads: int | None = typer.Option(None, "--threads", "-t", help="Threads per process (default: config)."),
) -> None:
    """Run the pod workers: one process runs its worker in-process (no `dramatiq` master beside it); more, or the
    queues' Prometheus exposition (served by the `dramatiq` command), run under the `dramatiq` command."""
    config = settings()
    if (processes or config.worker_processes) != 1 or config.queue_metrics_port:
        pods_cli.worker(processes, threads)  # replaces this process
        return
    _logging()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    running = start_worker(pod_broker(), threads or config.worker_threads)
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop_worker(running)
