"""The supervisor `ops/up` runs: the Procfile's processes, each restarted alone when it exits or hangs.

``python -m edgeworkers.supervisor --procfile Procfile --env-file ops/edgeworkers.env --run-dir .run`` runs each
process of the Procfile (honcho's format and parser: the Procfile stays the one list) in a process group of its own,
and:

- restarts one that exits or is killed, alone, one second later; one that keeps failing (running less than
  ``STABLE_AFTER_S``) waits twice as long each time, up to ``MAX_DELAY_S``, as systemd's ``RestartSec`` with
  ``RestartSteps`` does;
- speaks systemd's sd_notify protocol to it (``$NOTIFY_SOCKET``, one datagram socket per process, and
  ``$WATCHDOG_USEC``): once a process has said ``READY=1``, a silence of the watchdog's interval without
  ``WATCHDOG=1`` (a hung loop, see ``edgeworkers.watchdog``, or a process stopped with SIGSTOP) has its process group
  killed and restarted, as systemd's ``WatchdogSec`` does;
- writes the processes' output, a line at a time prefixed with the process's name, to a rotated log
  (``LOG_BYTES`` x ``LOG_BACKUPS``);
- records each process's PID and start time in ``supervisor.state``: a supervisor started after one that was killed
  hard first stops the processes that one left (each also gets SIGTERM when its supervisor dies, through
  ``PR_SET_PDEATHSIG``), so one set runs;
- on SIGTERM or SIGINT, sends SIGTERM to every process group, waits up to ``--stop-timeout`` seconds, then SIGKILLs
  what is left. Pods are Docker's: they keep running, as when kubelet stops;
- with ``--nodes N`` (N > 1), runs N edge nodes on this machine against the one cloud, for demos and tests: each
  process but ``cloud`` once per node, as ``agent-1`` ... ``agent-N``, with the node's own settings (``node_env``).

Why its own and not supervisord or circus: the watchdog. supervisord restarts dead processes only (a hung one needs an
event listener, a second Python process) and gives up on a process after ``startretries``; circus's watchdog plugin
has a UDP protocol of its own and brings pyzmq and tornado. This one uses the standard library and honcho (already a
dependency) and the same liveness protocol as the systemd units of a production install (``edgeworkers.systemd``),
in about 8 MB of PSS (BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import logging.handlers
import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from honcho.environ import parse as parse_env
from honcho.environ import parse_procfile

log = logging.getLogger("edgeworkers.supervisor")

RESTART_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 10.0  # a process that ran this long before it exited is restarted after RESTART_DELAY_S again
WATCHDOG_S = 30.0
STOP_TIMEOUT_S = 20.0
LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
STATE = "supervisor.state"
PR_SET_PDEATHSIG = 1
TICK_S = 0.2
SHELL_OPERATORS = ";&|<>()`$\n"
CLOUD_PROCESSES = ("cloud",)  # with --nodes, run once; every other process runs once per node
PORT_STEP = 10  # node i's ports are the single node's plus PORT_STEP * (i - 1)


def restart_delay(failures: int) -> float:
    """The wait before the restart that follows ``failures`` quick exits in a row (at least 1)."""
    return min(MAX_DELAY_S, RESTART_DELAY_S * 2 ** max(0, failures - 1))


def node_env(env: Mapping[str, str], index: int) -> dict[str, str]:
    """The settings of node ``index`` (1, 2, ...) of several on one machine, from the settings ``env`` (the env file's,
    over the process's environment) gives the single node: the node name with ``-index`` appended, the Redis database
    ``index`` of the same server, the data dir ``<data dir>/nodes/<name>``, the node endpoint's and metrics' ports
    ``PORT_STEP * (index - 1)`` above the single node's (a metrics port 0 stays off)."""
    from edgeworkers.config import Settings, environ_values  # only here: pydantic would double the supervisor's PSS

    fields = {name: info.annotation for name, info in Settings.model_fields.items()}
    settings = Settings(**environ_values(fields, env))
    url = urlsplit(settings.redis_url)
    if url.scheme not in ("redis", "rediss"):
        raise ValueError(f"several nodes need a redis:// or rediss:// EDGEWORKERS_REDIS_URL, not {url.scheme}://")
    name = f"{settings.node_name}-{index}"
    offset = PORT_STEP * (index - 1)
    return {
        "EDGEWORKERS_NODE_NAME": name,
        "EDGEWORKERS_REDIS_URL": url._replace(path=f"/{index}").geturl(),
        "EDGEWORKERS_DATA_DIR": str(settings.data_dir / "nodes" / name),
        "EDGEWORKERS_NODE_PORT": str(settings.node_port + offset),
        "EDGEWORKERS_METRICS_PORT": str(settings.metrics_port + offset if settings.metrics_port else 0),
    }


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat``), None when it is gone (or a zombie):
    with the PID, it names one process, never a later one that reused the PID."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


@dataclass
class Child:
    name: str
    command: str
    notify: socket.socket
    env: dict[str, str] = field(default_factory=dict)  # its own settings, over the supervisor's
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = 0.0  # due now: started by the first round
    ready: bool = False
    last_ping: float = 0.0
    partial: bytes = b""


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (a hard kill of it leaves no process behind)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, procfile: Path, env: dict[str, str], run_dir: Path, watchdog_s: float = WATCHDOG_S,
                 stop_timeout_s: float = STOP_TIMEOUT_S, nodes: int = 1) -> None:
        self.root = procfile.resolve().parent
        self.env = env
        self.run_dir = run_dir
        self.watchdog_s = watchdog_s
        self.stop_timeout_s = stop_timeout_s
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        notify_dir = run_dir / "notify"
        notify_dir.mkdir(mode=0o700, exist_ok=True)
        self.children: list[Child] = []
        processes = parse_procfile(procfile.read_text()).processes
        if nodes == 1:
            runs = [(name, command, {}) for name, command in processes.items()]
        else:
            merged = {**os.environ, **env}
            runs = [(name, command, {}) for name, command in processes.items() if name in CLOUD_PROCESSES]
            for index in range(1, nodes + 1):
                own = node_env(merged, index)
                runs += [(f"{name}-{index}", command, own) for name, command in processes.items()
                         if name not in CLOUD_PROCESSES]
        for name, command, own in runs:
            path = notify_dir / f"{name}.sock"
            path.unlink(missing_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            sock.bind(str(path))
            child = Child(name, command, sock, own)
            self.selector.register(sock, selectors.EVENT_READ, (child, "notify"))
            self.children.append(child)

    # --- one set of processes -------------------------------------------------------------------

    def _record(self) -> None:
        lines = [f"{c.name} {c.process.pid} {start_time(c.process.pid)}\n" for c in self.children
                 if c.process is not None and c.process.returncode is None]
        temporary = self.run_dir / f"{STATE}.new"
        temporary.write_text("".join(lines))
        temporary.replace(self.run_dir / STATE)

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        stop_leftovers(self.run_dir, self.stop_timeout_s)
        wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_w)
        self.selector.register(wakeup_r, selectors.EVENT_READ, (wakeup_r, "signal"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the wakeup fd
        while not self.stopping:
            self._pump()
            now = time.monotonic()
            for child in self.children:
                self._check(child, now)
        self._stop_all()

    def _pump(self) -> None:
        """Wait up to ``TICK_S`` for output, notifications or a signal, and handle them."""
        for key, _events in self.selector.select(TICK_S):
            target, kind = key.data
            if kind == "signal":
                os.read(target, 512)
            elif kind == "notify":
                self._notified(target)
            else:
                self._output(target)

    def _stop(self, signum: int, _frame: object) -> None:
        log.info("supervisor: stopping (signal %d)", signum)
        self.stopping = True

    def _check(self, child: Child, now: float) -> None:
        process = child.process
        if process is not None and process.poll() is not None:
            self._exited(child, now)
        elif process is not None and child.ready and now - child.last_ping > self.watchdog_s:
            log.error("%s: watchdog: no WATCHDOG=1 for %.0f s; killing pid %d", child.name, self.watchdog_s,
                      process.pid)
            signal_groups([process.pid], signal.SIGKILL)
            child.ready = False  # killed once; its exit restarts it
        if child.process is None and child.restart_at is not None and now >= child.restart_at:
            self._start(child, now)

    def _start(self, child: Child, now: float) -> None:
        env = {**os.environ, **self.env, **child.env, "NOTIFY_SOCKET": child.notify.getsockname(),
               "WATCHDOG_USEC": str(int(self.watchdog_s * 1e6))}
        child.process = subprocess.Popen(  # noqa: S603 - the Procfile's command, as honcho runs it
            ["/bin/sh", "-c", shell_command(child.command)], cwd=self.root, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )
        os.set_blocking(child.process.stdout.fileno(), False)
        self.selector.register(child.process.stdout, selectors.EVENT_READ, (child, "output"))
        child.started, child.restart_at, child.ready, child.partial = now, None, False, b""
        log.info("%s started (pid %d)", child.name, child.process.pid)
        self._record()

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        self._output(child, final=True)
        code = child.process.returncode
        ran = now - child.started
        child.failures = child.failures + 1 if ran < STABLE_AFTER_S else 1
        delay = restart_delay(child.failures)
        log.info("%s stopped (rc=%d) after %.0f s; restarting in %.0f s", child.name, code, ran, delay)
        signal_groups([child.process.pid], signal.SIGKILL)  # what it started dies with it
        child.process, child.restart_at = None, now + delay
        self._record()

    def _output(self, child: Child, final: bool = False) -> None:
        """Log the complete lines the process wrote; ``final`` (it exited): the rest too. At the end of its output,
        close its pipe."""
        process = child.process
        if process is None or process.stdout is None or process.stdout.closed:
            return
        data, ended = b"", False
        while True:
            try:
                chunk = os.read(process.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            data += chunk
            if not chunk:
                ended = True
                break
            if not final:
                break
        lines = (child.partial + data).split(b"\n")
        child.partial = lines.pop()
        if (final or ended) and child.partial:
            lines.append(child.partial)
            child.partial = b""
        for line in lines:
            log.info("%s | %s", child.name, line.decode(errors="replace").rstrip())
        if final or ended:
            self.selector.unregister(process.stdout)
            process.stdout.close()

    def _notified(self, child: Child) -> None:
        try:
            data = child.notify.recv(4096)
        except BlockingIOError:
            return
        fields = set(data.decode(errors="replace").split("\n"))
        if "READY=1" in fields and not child.ready:
            child.ready = True
            log.info("%s ready (watchdog %.0f s)", child.name, self.watchdog_s)
        if fields & {"READY=1", "WATCHDOG=1"}:
            child.last_ping = time.monotonic()

    def _stop_all(self) -> None:
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        terminate([p.pid for p in running])
        deadline = time.monotonic() + self.stop_timeout_s
        while any(p.poll() is None for p in running) and time.monotonic() < deadline:
            self._pump()  # their last words, and a full pipe never blocks one that is stopping
        for child in self.children:
            if child.process is not None:
                self._output(child, final=child.process.poll() is not None)
        signal_groups([p.pid for p in running], signal.SIGKILL)
        (self.run_dir / STATE).unlink(missing_ok=True)
        log.info("supervisor: stopped")


def shell_command(command: str) -> str:
    """The Procfile's ``command`` for ``sh -c``, run as honcho runs it; a simple command replaces the shell, so the
    recorded PID (and a signal sent to it) is the program's."""
    simple = not any(c in command for c in SHELL_OPERATORS) and not command.startswith("exec ")
    return f"exec {command}" if simple else command


def stop_leftovers(run_dir: Path, timeout_s: float) -> None:
    """Stop the processes a supervisor recorded in ``run_dir`` and left running (it was killed hard): SIGTERM to
    their groups, SIGKILL after ``timeout_s``."""
    state = run_dir / STATE
    if not state.exists():
        return
    groups = []
    for line in state.read_text().splitlines():
        name, pid, started = line.split()
        if start_time(int(pid)) == started:
            log.info("%s: stopping pid %s, left by an earlier run", name, pid)
            groups.append(int(pid))
    terminate(groups)
    deadline = time.monotonic() + timeout_s
    while any(start_time(pid) for pid in groups) and time.monotonic() < deadline:
        time.sleep(TICK_S)
    signal_groups(groups, signal.SIGKILL)
    state.unlink()


def terminate(pids: list[int]) -> None:
    """SIGTERM, then SIGCONT (a stopped process acts on it only once continued) to the groups ``pids`` lead."""
    signal_groups(pids, signal.SIGTERM)
    signal_groups(pids, signal.SIGCONT)


def signal_groups(pids: list[int], sig: int) -> None:
    """Send ``sig`` to the process group each of ``pids`` leads (gone ones are skipped)."""
    for pid in pids:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeworkers.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, help="the processes to run (required but with --stop-leftovers)")
    parser.add_argument("--env-file", type=Path, help="KEY=value settings for every process (honcho's format)")
    parser.add_argument("--run-dir", type=Path, required=True, help="state, notify sockets and (default) the log")
    parser.add_argument("--log", type=Path, help="the rotated log (default: RUN_DIR/edgeworkers.log)")
    parser.add_argument("--log-bytes", type=int, default=LOG_BYTES, help="the log's size when it is rotated")
    parser.add_argument("--watchdog-s", type=float, default=WATCHDOG_S)
    parser.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT_S)
    parser.add_argument("--nodes", type=int, default=1, help="edge nodes to run against the one cloud (node_env)")
    parser.add_argument("--stop-leftovers", action="store_true",
                        help="only stop the processes recorded in RUN_DIR by a supervisor killed hard")
    args = parser.parse_args(argv)
    if args.procfile is None and not args.stop_leftovers:
        parser.error("--procfile is required")
    if args.nodes < 1:
        parser.error("--nodes must be 1 or more")
    handler = logging.handlers.RotatingFileHandler(args.log or args.run_dir / "edgeworkers.log",
                                                   maxBytes=args.log_bytes, backupCount=LOG_BACKUPS)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if args.stop_leftovers:
        stop_leftovers(args.run_dir, args.stop_timeout)
        return
    env = parse_env(args.env_file.read_text()) if args.env_file else {}
    Supervisor(args.procfile, env, args.run_dir, args.watchdog_s, args.stop_timeout, args.nodes).run()


if __name__ == "__main__":
    main()
