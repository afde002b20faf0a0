"""The pod actors (``edgeworkers.workerprocess``) on a slow engine: every container create waits ``SLOW_CREATE_S`` first.

Workers started on this module (``dramatiq slow_actors``) are surely in the middle of an add when the sandbox
exists but the app container does not yet: the moment the SIGKILL test kills them.
"""
from __future__ import annotations

import os
import time

from edgeworkers.runtime.docker import DockerRuntime

_create_container = DockerRuntime.create_container


def _slow_create_container(self, *args, **kwargs):
    time.sleep(float(os.environ["SLOW_CREATE_S"]))
    return _create_container(self, *args, **kwargs)


DockerRuntime.create_container = _slow_create_container

# The process's services and actors, as `dramatiq edgeworkers.workerprocess` builds them, after the patch.
from edgeworkers.workerprocess import broker  # noqa: E402, F401
