"""Docker labels that let the node's whole pod state be rebuilt from Docker alone."""
from __future__ import annotations

PREFIX = "io.edgeworkers"
NODE = f"{PREFIX}.node"  # the node name that owns the container (tests use unique node names)
POD_UID = f"{PREFIX}.pod.uid"
POD_NAMESPACE = f"{PREFIX}.pod.namespace"
POD_NAME = f"{PREFIX}.pod.name"
CONTAINER_NAME = f"{PREFIX}.container.name"
CONTAINER_TYPE = f"{PREFIX}.container.type"  # "sandbox" | "init" | "app"
RESTART_COUNT = f"{PREFIX}.container.restartCount"
SPEC_HASH = f"{PREFIX}.container.hash"

SANDBOX_NAME = "POD"
TYPE_SANDBOX = "sandbox"
TYPE_INIT = "init"
TYPE_APP = "app"
