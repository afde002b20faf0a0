"""What the benchmarks share: a Redis database of their own, and removing the containers they made.

Imported by the scripts beside it (``ops/bench/X.py`` runs with this folder on ``sys.path``).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import docker
import redis

from edgeworkers.runtime import labels

CLAIM_KEY = "edgeworkers:bench-claim"


def claim_database(url: str) -> str:
    """The URL of an empty database of the Redis at ``url``, claimed with a key (as the test fixtures do)."""
    for db in range(255, 0, -1):
        client = redis.Redis.from_url(f"{url}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True):
            return f"{url}/{db}"
    raise SystemExit(f"no free database on {url}")


def remove_containers(client: docker.DockerClient, node: str) -> None:
    """Remove every container labelled for ``node`` (the benchmark's own node name), in parallel."""

    def remove(ident: str) -> None:
        try:
            client.api.remove_container(ident, force=True)
        except docker.errors.NotFound:
            pass

    entries = client.api.containers(all=True, filters={"label": f"{labels.NODE}={node}"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, [entry["Id"] for entry in entries]))
