"""The agent's Redis (ops/services) refuses a caller without its password; every client built here sends it."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.redisconn import redis_client
from tests.integration.cloud.conftest import EDGEWORKERS

STATE_DIR = Path(os.environ.get("EDGEWORKERS_STATE_DIR", "/var/lib/edgeworkers"))
PASSWORD_FILE = Path(os.environ.get("EDGEWORKERS_AGENT_REDIS_PASSWORD_FILE", STATE_DIR / "secrets" / "redis-password"))
PORT = os.environ.get("EDGEWORKERS_AGENT_REDIS_PORT", "6379")
URL = f"redis://127.0.0.1:{PORT}/0"


@pytest.fixture(scope="module", autouse=True)
def agent_redis() -> None:
    if not PASSWORD_FILE.exists():
        pytest.fail(f"{PASSWORD_FILE} is missing: ops/services makes it (ops/test runs it first)")


def test_redis_cli_without_the_password_is_refused() -> None:
    anonymous = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", PORT, "ping"], capture_output=True, text=True,
                               timeout=10, check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    wrong = subprocess.run(["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", PORT, "ping"],
                           env={**os.environ, "REDISCLI_AUTH": "guess"}, capture_output=True, text=True, timeout=10,
                           check=False)
    assert "PONG" not in wrong.stdout
    authorized = subprocess.run(["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", PORT, "ping"],
                                env={**os.environ, "REDISCLI_AUTH": PASSWORD_FILE.read_text().strip()},
                                capture_output=True, text=True, timeout=10, check=False)
    assert authorized.stdout.strip() == "PONG"


def test_the_password_is_0600_in_a_0700_directory_and_on_no_command_line() -> None:
    assert stat.S_IMODE(PASSWORD_FILE.stat().st_mode) == 0o600
    assert stat.S_IMODE(PASSWORD_FILE.parent.stat().st_mode) == 0o700
    for other in PASSWORD_FILE.parent.iterdir():
        assert stat.S_IMODE(other.stat().st_mode) == 0o600, other
    password = PASSWORD_FILE.read_bytes().strip()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                assert password not in (proc / "cmdline").read_bytes(), f"pid {proc.name} shows the password"
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue


def test_every_client_and_command_authenticates_with_the_file() -> None:
    settings = Settings(redis_url=URL, redis_password_file=str(PASSWORD_FILE))
    client = redis_client(settings)
    assert client.ping()
    assert PASSWORD_FILE.read_text().strip() not in repr(client)
    assert make_broker(settings, redis_client(settings)).client.ping()  # the workers' and the bridge's queues: Dramatiq's own client
    env = {**os.environ, "EDGEWORKERS_REDIS_URL": URL}
    env["EDGEWORKERS_REDIS_PASSWORD_FILE"] = str(PASSWORD_FILE)
    listed = subprocess.run([EDGEWORKERS, "pod", "list"], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    env["EDGEWORKERS_REDIS_PASSWORD_FILE"] = ""
    refused = subprocess.run([EDGEWORKERS, "pod", "list"], env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert refused.returncode != 0
    assert PASSWORD_FILE.read_text().strip() not in refused.stdout + refused.stderr
