"""systemd units for a production install (`ops/install`): one service per process of the Procfile (or of
``Procfile.lite``), a target that groups them, and the unit that stops the pods when the machine shuts down.

``python -m edgeworkers.systemd --procfile Procfile --venv /opt/edgeworkers/venv --out DIR`` writes them. Each
service runs its Procfile command from the install's own virtualenv, with:

- ``Restart=always`` after ``RestartSec``, and no start limit: systemd never gives up on it, as kubelet's unit;
- ``After=``/``Wants=`` on docker and Redis (the edge's), and the network;
- the settings file as ``EnvironmentFile`` (``/etc/edgeworkers/edgeworkers.env``, 0600: it may name secrets' files);
- ``StateDirectory=edgeworkers edgeworkers/secrets`` with mode 0700 (``/var/lib/edgeworkers``, the data and the
  Redis password);
- ``MemoryMax`` from the footprint measured in BENCHMARKS.md ("Footprint": about 66 MB of PSS for the agent, 48 for the
  worker, 74 for the lite agent, each with 100 pods after an hour of work), with room for bursts;
- for the edge's processes, ``Type=notify`` and ``WatchdogSec``: the process says ``READY=1`` when it does its job
  and pings the watchdog only while its loops make progress (``edgeworkers.watchdog``), so systemd restarts one that
  hangs, as kubelet's own systemd watchdog does;
- ``KillMode=mixed``: SIGTERM to the main process only (the worker finishes its tasks, the dramatiq master stops its
  worker processes), SIGKILL to the whole cgroup after ``TimeoutStopSec``. Pods are Docker's, in no unit's cgroup:
  stopping, restarting or upgrading a unit leaves them running.

``edgeworkers-pods.service`` is the graceful node shutdown (``edgeworkers.pods.shutdown``): started at boot with
nothing to do, its ``ExecStop`` stops the pods within ``--shutdown-grace`` seconds, only when the system is shutting
down (``systemctl is-system-running`` says ``stopping``): an operator's stop, restart or uninstall leaves them. Ordered after docker and Redis and before the edge's services, it stops after the agent and the worker (so
nothing restarts a pod meanwhile) and before docker and Redis.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from honcho.environ import parse_procfile

PREFIX = "edgeworkers"
TARGET = f"{PREFIX}.target"
PODS_UNIT = f"{PREFIX}-pods.service"
VENV_BIN = ".venv/bin/"  # how the Procfile's commands start
ENV_FILE = Path("/etc/edgeworkers/edgeworkers.env")
DEPENDENCIES = ("docker.service", "redis-server.service")
RESTART_SEC = 2
WATCHDOG_SEC = 30
STOP_TIMEOUT_SEC = 60
SHUTDOWN_GRACE_S = 30
# MemoryMax by process, about three times the PSS measured with 100 pods (BENCHMARKS.md, "Footprint"): the cgroup also
# counts the shared libraries' pages its processes touch first, and a burst of syncs or exec streams adds to it.
MEMORY_MAX = {"cloud": "512M", "agent": "192M", "worker": "160M"}
LITE_AGENT_MEMORY_MAX = "224M"
EDGE_PROCESSES = ("agent", "worker")  # those that speak sd_notify; the cloud is not the edge's


@dataclass(frozen=True)
class Install:
    venv: Path
    env_file: Path = ENV_FILE
    shutdown_grace_s: int = SHUTDOWN_GRACE_S


def command(procfile_command: str, venv: Path) -> str:
    """The Procfile's ``command`` run from ``venv`` (``.venv/bin/X`` -> ``VENV/bin/X``)."""
    if not procfile_command.startswith(VENV_BIN):
        raise ValueError(f"a Procfile command must start with {VENV_BIN}, not {procfile_command!r}")
    return f"{venv}/bin/{procfile_command.removeprefix(VENV_BIN)}"


def service(name: str, procfile_command: str, install: Install, lite: bool) -> str:
    edge = name in EDGE_PROCESSES
    after = " ".join(["network-online.target", *DEPENDENCIES, *([PODS_UNIT] if edge else [])])
    memory = LITE_AGENT_MEMORY_MAX if lite and name == "agent" else MEMORY_MAX.get(name, "256M")
    notify = (f"Type=notify\nNotifyAccess={'all' if name == 'worker' else 'main'}\nWatchdogSec={WATCHDOG_SEC}\n"
              if edge else "Type=exec\n")
    return f"""[Unit]
Description=edgeworkers {name} ({procfile_command})
After={after}
Wants={after}
PartOf={TARGET}
StartLimitIntervalSec=0

[Service]
{notify}ExecStart={command(procfile_command, install.venv)}
EnvironmentFile={install.env_file}
Environment=PYTHONUNBUFFERED=1
WorkingDirectory=/var/lib/{PREFIX}
StateDirectory={PREFIX} {PREFIX}/secrets
StateDirectoryMode=0700
UMask=0077
Restart=always
RestartSec={RESTART_SEC}
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT_SEC}
MemoryMax={memory}

[Install]
WantedBy=multi-user.target
"""


def pods_unit(install: Install) -> str:
    stop = f"{install.venv}/bin/edgeworkers node-shutdown --if-shutting-down --grace-period {install.shutdown_grace_s}"
    return f"""[Unit]
Description=edgeworkers graceful node shutdown: stops the pods when the machine shuts down
After=network-online.target {" ".join(DEPENDENCIES)}
Wants={" ".join(DEPENDENCIES)}
PartOf={TARGET}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop={stop}
EnvironmentFile={install.env_file}
TimeoutStopSec={install.shutdown_grace_s + 30}

[Install]
WantedBy=multi-user.target
"""


def target(names: list[str]) -> str:
    wants = " ".join([*(f"{PREFIX}-{name}.service" for name in names), PODS_UNIT])
    return f"""[Unit]
Description=edgeworkers: the edge agent's processes
Wants={wants}

[Install]
WantedBy=multi-user.target
"""


def units(procfile_text: str, install: Install, lite: bool = False) -> dict[str, str]:
    """The unit files by name, for the Procfile's processes."""
    processes = parse_procfile(procfile_text).processes
    made = {f"{PREFIX}-{name}.service": service(name, cmd, install, lite) for name, cmd in processes.items()}
    made[PODS_UNIT] = pods_unit(install)
    made[TARGET] = target(list(processes))
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeworkers.systemd", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True, help="the install's virtualenv (absolute)")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    parser.add_argument("--out", type=Path, required=True, help="where to write the units (/etc/systemd/system)")
    parser.add_argument("--lite", action="store_true", help="the Procfile is Procfile.lite")
    parser.add_argument("--shutdown-grace", type=int, default=SHUTDOWN_GRACE_S,
                        help="seconds the pods get to stop when the machine shuts down")
    args = parser.parse_args(argv)
    install = Install(args.venv.absolute(), args.env_file.absolute(), args.shutdown_grace)
    for name, text in units(args.procfile.read_text(), install, args.lite).items():
        (args.out / name).write_text(text)
        print(args.out / name)


if __name__ == "__main__":
    main()
