"""`edgeworkers worker`: one process runs Dramatiq's worker in-process (no `dramatiq` master beside it); more
processes run under the `dramatiq` command (its master and worker processes)."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil

from tests.integration.cloud.conftest import EDGEWORKERS
from tests.integration.queue.queuekit import Worker, worker_env
from tests.polling import wait_for

READY = "Worker process is ready for action."


def start(config, log: Path, processes: int) -> Worker:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [EDGEWORKERS, "worker", "--processes", str(processes), "--threads", "2"], env=worker_env(config),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Worker(process, log)


def test_one_process_runs_the_worker_in_process_and_stops_cleanly_on_sigterm(config, tmp_path) -> None:
    worker = start(config, tmp_path / "worker.log", processes=1)
    try:
        wait_for(lambda: READY in worker.output() or worker.process.poll() is not None, 30, "the worker")
        assert worker.process.poll() is None, worker.output()
        assert psutil.Process(worker.process.pid).children(recursive=True) == []  # no master, no fork
        assert Path(f"/proc/{worker.process.pid}/cmdline").read_text().split("\0")[2] == "worker"

        os.kill(worker.process.pid, signal.SIGTERM)
        assert worker.process.wait(30) == 0, worker.output()
        assert "Worker has been shut down" in worker.output()
        assert "Traceback" not in worker.output()
    finally:
        worker.stop()


def test_two_processes_run_under_the_dramatiq_command(config, tmp_path) -> None:
    worker = start(config, tmp_path / "worker.log", processes=2)
    try:
        wait_for(lambda: worker.output().count(READY) >= 2 or worker.process.poll() is not None, 60, "the workers")
        # `edgeworkers worker` became Dramatiq's CLI (same PID) on the four pod queues.
        argv = Path(f"/proc/{worker.process.pid}/cmdline").read_text().split("\0")
        assert argv[1:4] == ["-m", "dramatiq", "edgeworkers.workerprocess"]
        assert " ".join(argv[4:]).startswith("--processes 2 --threads 2 --queues pod_add pod_update pod_delete pod_sync")
    finally:
        worker.stop()
