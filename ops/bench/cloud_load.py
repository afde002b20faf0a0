#!/usr/bin/env python3
"""Load on the cloud API, in one run against its own `edgeworkers cloud serve` (temp data dir, free port).

1. C concurrent clients for D seconds (default 50 for 60 s), each on its own connection: W of them watch the
   configmaps (resuming from their last resourceVersion if the server ends a watch), the others loop over a mix of
   list (25 %), get (35 %) and merge-patch (40 %) of N configmaps. Reports requests/s, p50/p99 by verb, errors
   (target 0), and whether every watcher saw every write, in resourceVersion order (nothing lost, nothing reordered).
2. `GET /version` p99 on a connection of its own, idle, then during a write burst (B writers creating and patching
   as fast as they can): the event loop must not wait on the database (target: under 20 ms during the burst).

    .venv/bin/python ops/bench/cloud_load.py --clients 50 --watchers 10 --seconds 60
"""
from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from cloud import Server, percentile  # noqa: E402 - the sibling benchmark's server runner

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


class Load:
    def __init__(self, server: Server, objects: int) -> None:
        self.server, self.objects = server, objects
        self.ssl = ssl.create_default_context(cafile=server.ca)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.written: set[int] = set()  # resourceVersions of the patches
        self.stop = asyncio.Event()

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=1)
        return aiohttp.ClientSession(self.server.base, headers=self.server.headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def seed(self) -> int:
        async with self.session() as session:
            for i in range(self.objects):
                body = {"metadata": {"name": f"load-{i:04d}"}, "data": {"n": "0"}}
                async with session.post(CONFIGMAPS, json=body) as resp:
                    assert resp.status == 201, await resp.text()
            async with session.get(CONFIGMAPS) as resp:
                return int((await resp.json())["metadata"]["resourceVersion"])

    async def worker(self, index: int) -> None:
        rng = random.Random(index)
        async with self.session() as session:
            while not self.stop.is_set():
                name = f"load-{rng.randrange(self.objects):04d}"
                roll = rng.random()
                started = time.perf_counter()
                if roll < 0.25:
                    verb, call = "list", session.get(CONFIGMAPS)
                elif roll < 0.60:
                    verb, call = "get", session.get(f"{CONFIGMAPS}/{name}")
                else:
                    verb = "patch"
                    call = session.patch(f"{CONFIGMAPS}/{name}", data=orjson.dumps(
                        {"data": {"n": str(rng.randrange(1 << 30))}}), headers=MERGE)
                try:
                    async with call as resp:
                        body = await resp.read()
                        if resp.status >= 400:
                            self.errors[f"{verb} {resp.status}"] += 1
                            continue
                        if verb == "patch":
                            self.written.add(int(orjson.loads(body)["metadata"]["resourceVersion"]))
                except aiohttp.ClientError as exc:
                    self.errors[f"{verb} {type(exc).__name__}"] += 1
                    continue
                self.latencies[verb].append(time.perf_counter() - started)

    async def watcher(self, since: int, seen: list[int], restarts: list[int]) -> None:
        """Record every event's resourceVersion; rewatch from the last one when the server ends the stream."""
        last = since
        async with self.session() as session:
            while not self.stop.is_set():
                try:
                    async with session.get(f"{CONFIGMAPS}?watch=true&resourceVersion={last}") as resp:
                        if resp.status != 200:
                            self.errors[f"watch {resp.status}"] += 1
                            await asyncio.sleep(0.1)
                            continue
                        async for line in resp.content:
                            event = orjson.loads(line)
                            if event["type"] == "ERROR":
                                self.errors["watch ERROR event"] += 1
                                break
                            rv = int(event["object"]["metadata"]["resourceVersion"])
                            seen.append(rv)
                            last = rv
                            if self.stop.is_set() and rv >= self.final_rv:
                                return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                restarts[0] += 1

    async def run(self, clients: int, watchers: int, seconds: float) -> dict:
        since = await self.seed()
        seen: list[list[int]] = [[] for _ in range(watchers)]
        restarts = [[0] for _ in range(watchers)]
        self.final_rv = 1 << 62
        watch_tasks = [asyncio.create_task(self.watcher(since, seen[i], restarts[i])) for i in range(watchers)]
        await asyncio.sleep(0.5)  # the watches are open
        workers = [asyncio.create_task(self.worker(i)) for i in range(clients - watchers)]
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        self.stop.set()
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - started
        self.final_rv = max(self.written, default=since)
        try:  # every watcher gets until its stream has passed the last write
            await asyncio.wait_for(asyncio.gather(*watch_tasks), 30)
        except TimeoutError:
            for task in watch_tasks:
                task.cancel()
        complete = [self.written <= set(s) for s in seen]
        ordered = [all(a < b for a, b in zip(s, s[1:], strict=False)) for s in seen]
        return {"elapsed": elapsed, "complete": complete, "ordered": ordered,
                "restarts": [r[0] for r in restarts], "events": [len(s) for s in seen]}


async def version_p99(server: Server, ctx: ssl.SSLContext, samples: int, during: asyncio.Event | None = None,
                      ) -> list[float]:
    latencies = []
    connector = aiohttp.TCPConnector(ssl=ctx, limit=1)
    async with aiohttp.ClientSession(server.base, headers=server.headers, connector=connector) as session:
        async with session.get("/version") as resp:
            await resp.read()
        for _ in range(samples):
            if during is not None and during.is_set():
                break
            started = time.perf_counter()
            async with session.get("/version") as resp:
                await resp.read()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
    return latencies


async def burst(server: Server, ctx: ssl.SSLContext, writers: int, seconds: float) -> int:
    """Writers creating and patching configmaps as fast as they can; returns how many writes were made."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def write(index: int) -> None:
        nonlocal count
        connector = aiohttp.TCPConnector(ssl=ctx, limit=1)
        async with aiohttp.ClientSession(server.base, headers=server.headers, connector=connector) as session:
            i = 0
            while time.perf_counter() < deadline:
                name = f"burst-{index}-{i}"
                async with session.post(CONFIGMAPS, json={"metadata": {"name": name}, "data": {"x": "y" * 512}}) as r:
                    await r.read()
                async with session.patch(f"{CONFIGMAPS}/{name}", data=b'{"data":{"x":"z"}}', headers=MERGE) as r:
                    await r.read()
                count += 2
                i += 1

    await asyncio.gather(*(write(i) for i in range(writers)))
    return count


def report(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:>8}: no samples"
    return (f"{name:>8}: {len(values):6d} requests  p50 {percentile(values, 50) * 1000:7.1f} ms  "
            f"p99 {percentile(values, 99) * 1000:7.1f} ms")


async def main_async(args: argparse.Namespace, server: Server) -> None:
    load = Load(server, args.objects)
    result = await load.run(args.clients, args.watchers, args.seconds)
    total = sum(len(v) for v in load.latencies.values())
    print(f"load: {args.clients} clients ({args.watchers} watching) for {result['elapsed']:.0f} s on "
          f"{args.objects} configmaps")
    print(f"  {total / result['elapsed']:.0f} requests/s")
    for verb in ("list", "get", "patch"):
        print("  " + report(verb, load.latencies[verb]))
    print(f"  errors: {sum(load.errors.values())} {dict(load.errors) or ''}")
    print(f"  writes: {len(load.written)}; every watcher saw every write: {all(result['complete'])}; "
          f"in resourceVersion order: {all(result['ordered'])}; events per watcher: {result['events']}; "
          f"rewatches: {result['restarts']}")

    idle = await version_p99(server, load.ssl, args.version_samples)
    done = asyncio.Event()
    sampler = asyncio.create_task(version_p99(server, load.ssl, 100_000, done))
    writes = await burst(server, load.ssl, args.burst_writers, args.burst_seconds)
    done.set()
    busy = await sampler
    print(f"GET /version: idle p50 {percentile(idle, 50) * 1000:.1f} ms p99 {percentile(idle, 99) * 1000:.1f} ms; "
          f"during a burst of {writes} writes by {args.burst_writers} writers in {args.burst_seconds:.0f} s "
          f"({writes / args.burst_seconds:.0f}/s): p50 {percentile(busy, 50) * 1000:.1f} ms "
          f"p99 {percentile(busy, 99) * 1000:.1f} ms ({len(busy)} samples; target p99 < 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--version-samples", type=int, default=1000)
    parser.add_argument("--burst-writers", type=int, default=20)
    parser.add_argument("--burst-seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cloud-load-") as root:
        server = Server(Path(root))
        try:
            asyncio.run(main_async(args, server))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
