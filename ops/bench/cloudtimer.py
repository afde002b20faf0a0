#!/usr/bin/env python3
"""`edgeworkers cloud serve` with each request timed on the server, for ops/bench/fleet.py: the cloud has no request
metrics of its own, and on a 2-core machine shared with many hollow nodes a client's clock also counts the time its
own process waited for a core.

The very server (``edgeworkers.cloud.app.serve`` from the settings), with one middleware put outermost, so it counts
authentication, the handler and the error translation, as kube-apiserver's request duration does (from its handler
chain's start to the response written). Every request but a watch is recorded as (verb, resource, start, seconds,
HTTP status) and written as JSON lines to ``$FLEET_CLOUD_SAMPLES`` when the server stops (SIGTERM). With
``$FLEET_CLOUD_PROFILE`` set, the event loop's thread runs under cProfile and its stats are written there then.

    FLEET_CLOUD_SAMPLES=out.jsonl EDGEWORKERS_CLOUD_PORT=... python ops/bench/cloudtimer.py
"""
from __future__ import annotations

import cProfile
import os
import time
from pathlib import Path

import orjson
from aiohttp import web
from hollow import Sample, classify

from edgeworkers.cloud import app as cloud_app
from edgeworkers.config import settings

SAMPLES_ENV = "FLEET_CLOUD_SAMPLES"
PROFILE_ENV = "FLEET_CLOUD_PROFILE"


def timed_app(samples: list[Sample], out: Path, profiler: cProfile.Profile | None, profile_out: str):
    """``cloud_app.create_app`` whose application times each request into ``samples``, written to ``out`` at
    cleanup (and the profiler's stats, if any, to ``profile_out``)."""
    create_app = cloud_app.create_app

    @web.middleware
    async def timing(request: web.Request, handler):
        if request.query.get("watch") in ("true", "1"):
            return await handler(request)
        started, clock = time.time(), time.perf_counter()
        code = "500"
        try:
            response = await handler(request)
            code = str(response.status)
            return response
        except web.HTTPException as exc:
            code = str(exc.status)
            raise
        finally:
            samples.append((*classify(request.method, request.path), started, time.perf_counter() - clock, code))

    async def write(_app: web.Application) -> None:
        out.write_bytes(b"".join(orjson.dumps(sample) + b"\n" for sample in samples))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_out)

    def create(*args, **kwargs) -> web.Application:
        application = create_app(*args, **kwargs)
        application.middlewares.insert(0, timing)
        application.on_cleanup.append(write)
        return application

    return create


def main() -> None:
    profile_out = os.environ.get(PROFILE_ENV, "")
    profiler = cProfile.Profile() if profile_out else None
    cloud_app.create_app = timed_app([], Path(os.environ[SAMPLES_ENV]), profiler, profile_out)
    if profiler is not None:
        profiler.enable()
    cloud_app.serve(settings())


if __name__ == "__main__":
    main()
