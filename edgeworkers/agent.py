"""The edge's processes, each a choice of roles built by ``wiring`` from one set of services:

- `edgeworkers agent`: the whole edge in one process (``Procfile.lite``), for small machines, or all of it but the pod
  worker (``--no-worker``: the ``Procfile``, beside `edgeworkers worker`);
- `edgeworkers worker`: the pod worker; with one process it runs in-process, with more (or the queues' Prometheus
  exposition) under the `dramatiq` command's master, each of its processes loading ``edgeworkers.workerprocess``;
- `edgeworkers node serve`: the bridge and the node's endpoint alone; `edgeworkers scheduler`: the periodic jobs alone;
  `edgeworkers orphans`: one orphan cleanup.

Why the Procfile's full mode is two edge processes, not one per part: each Python process of the edge holds 45-55 MB of
imports (pydantic, redis-py, the Docker SDK, aiohttp) before any pod, and the bridge and the scheduler import the same
ones; apart they took 146-161 MB with the worker and 100 pods, together 110-114 (ops/bench/footprint.py). The worker
stays apart: it is the part to scale (``worker_processes``) and the one whose tasks a time limit may kill.

The agent's guarantees are the multi-process mode's, since they live in Redis, not in a process: a task in flight
when the process is killed stays unacknowledged and is redelivered once the worker's heartbeat has expired; one pod's
tasks never overlap (``pods.lock``). SIGTERM or SIGINT stops it: the bridge (no new tasks), the scheduler, then the
worker, which finishes its running tasks and gives the prefetched ones back to their queues.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeworkers import watchdog, wiring
from edgeworkers.config import Settings, settings

log = logging.getLogger("edgeworkers.agent")
node_app = typer.Typer(no_args_is_help=True)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)  # not a line per job run


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _refused(exc: ValueError) -> SystemExit:
    return SystemExit(f"{Path(sys.argv[0]).name}: {exc}")


def _build(config: Settings) -> wiring.Services:
    try:
        return wiring.build(config)
    except ValueError as exc:  # a setting refused (the container logs' rotation)
        raise _refused(exc) from None


def _jobs(services: wiring.Services, scheduler_class: type | None = None) -> tuple[Any, Any]:
    try:
        return wiring.periodic_jobs(services, scheduler_class)
    except ValueError as exc:  # a policy refused when its manager is built (image GC, eviction thresholds)
        raise _refused(exc) from None


def agent(
    threads: int | None = typer.Option(None, "--threads", "-t", help="Worker threads (default: config)."),
    with_worker: bool = typer.Option(True, "--worker/--no-worker",
                                     help="Run the pod worker here (--no-worker: `edgeworkers worker` runs it)."),
) -> None:
    """Run the bridge, the scheduler's jobs and (unless --no-worker) the pod worker in this one process (see the
    module's docstring)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    config = settings()
    _logging()
    if threads is not None and not with_worker:
        log.warning("--threads has no effect with --no-worker: `edgeworkers worker` runs the pod worker")
    # Until the bridge's event loop takes over SIGTERM and SIGINT, either stops the start-up cleanly.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    services = _build(config)
    scheduler, node = _jobs(services, BackgroundScheduler)
    worker = None
    try:
        if with_worker:
            worker = wiring.start_worker(services, threads or config.worker_threads)
        wiring.serve_metrics(services)
        scheduler.start()
        workers = f"{threads or config.worker_threads} worker threads" if with_worker else "no worker (edgeworkers worker)"
        log.info("agent is ready: node %s, %s", config.node_name, workers)
        watchdog.ready("pleg", "bridge")  # READY=1, then WATCHDOG=1 while the PLEG and the bridge's loop beat
        # From here a signal only sets ``stop``: raised while asyncio.run builds its loop, it would leave it half made.
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: stop.set())
        wiring.run_node(services, stop)  # until SIGTERM or SIGINT
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal stops at once
        log.info("agent stopping")
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if worker is not None:
            wiring.stop_worker(worker)
        log.info("agent stopped")


def worker(
    processes: int | None = typer.Option(None, "--processes", "-p", help="Worker processes (default: config)."),
    threads: int | None = typer.Option(None, "--threads", "-t", help="Threads per process (default: config)."),
) -> None:
    """Run the pod workers: one process runs its worker in-process (no `dramatiq` master beside it); more, or the
    queues' Prometheus exposition (served by the `dramatiq` command), run under the `dramatiq` command."""
    config = settings()
    _logging()
    services = _build(config)
    if (processes or config.worker_processes) != 1 or config.queue_metrics_port:
        wiring.resync_desired(services)
        services.close()
        _exec_dramatiq(config, processes, threads)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    running = wiring.start_worker(services, threads or config.worker_threads)
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        wiring.stop_worker(running)


def _exec_dramatiq(config: Settings, processes: int | None, threads: int | None) -> None:
    """Replace this process with Dramatiq's worker CLI on the pod queues, loading ``edgeworkers.workerprocess``."""
    from edgeworkers.tasks import QUEUE_OF

    argv = [
        sys.executable, "-m", "dramatiq", "edgeworkers.workerprocess",
        "--processes", str(processes or config.worker_processes),
        "--threads", str(threads or config.worker_threads),
        "--queues", *QUEUE_OF.values(),
    ]  # fmt: skip
    if config.queue_metrics_port:  # Dramatiq's exposition fork reads these: loopback only (see broker.make_broker)
        os.environ["dramatiq_prom_host"] = "127.0.0.1"
        os.environ["dramatiq_prom_port"] = str(config.queue_metrics_port)
    os.execvp(argv[0], argv)


def scheduler() -> None:
    """Run the periodic jobs (PLEG relist, probes, orphan cleanup, GC, usage) on APScheduler; metrics on 127.0.0.1."""
    config = settings()
    _logging()
    services = _build(config)
    jobs, _node = _jobs(services)
    wiring.serve_metrics(services)

    def stop(signum: int, _frame: Any) -> None:
        log.info("stopping (signal %d)", signum)
        jobs.shutdown(wait=False)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    log.info("scheduler starting for node %s", config.node_name)
    watchdog.ready("pleg")
    jobs.start()


@node_app.command("serve")
def node_serve(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="EDGEWORKERS_KUBECONFIG",
            help="Kubeconfig of the cloud API. Default: the embedded cloud's credentials in its data dir.",
        ),
    ] = None,
) -> None:
    """Serve the node's kubelet-style endpoint, keep the node registered, and bridge its pods with the cloud."""
    from edgeworkers.kubeclient import access_from_settings

    config = settings()
    if kubeconfig is not None:  # a bad kubeconfig stops the command at once, not a thread later
        config = config.model_copy(update={"kubeconfig": kubeconfig})
        try:
            access_from_settings(config)
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot use kubeconfig {kubeconfig}: {exc}", param_hint="--kubeconfig") from exc
    wiring.run_node(_build(config))


def node_shutdown(
    grace_period: float = typer.Option(30.0, "--grace-period", help="Seconds each container gets to stop."),
    if_shutting_down: bool = typer.Option(False, "--if-shutting-down",
                                          help="Only while systemd shuts the machine down; else do nothing."),
) -> None:
    """Stop every pod's containers, keeping them and the desired state for the next boot (the systemd unit
    edgeworkers-pods.service runs this when the machine shuts down: see edgeworkers/pods/shutdown.py)."""
    from edgeworkers.pods.shutdown import shutting_down, stop_pods
    from edgeworkers.runtime.errors import RuntimeFault

    if if_shutting_down and not shutting_down():
        typer.echo("the system is not shutting down: the pods keep running")
        return
    try:
        stopped = stop_pods(_build(settings()).runtime, grace_period)
    except RuntimeFault as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"stopped {len(stopped)} container(s) of {len({c.pod.key for c in stopped})} pod(s)")


def orphans() -> None:
    """Remove the containers of pods that are not in the desired state (the scheduler does this every minute)."""
    import dramatiq

    from edgeworkers.metamanager.store import StoreError
    from edgeworkers.pods.reconcile import remove_orphans
    from edgeworkers.runtime.errors import RuntimeFault

    services = _build(settings())
    try:
        removed = remove_orphans(wiring.pod_workers(services, follow_ups=False))
    except (StoreError, dramatiq.errors.BrokerConnectionError) as exc:
        typer.echo(f"error: cannot reach the agent's Redis: {exc}", err=True)
        raise typer.Exit(1) from None
    except RuntimeFault as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for key in removed:
        typer.echo(f"removed the containers of pod {key}")
