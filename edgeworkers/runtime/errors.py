"""Errors raised by a Runtime; the sync loop maps them to Kubernetes waiting reasons."""
from __future__ import annotations


class ContainerRuntimeError(Exception):
    """Base class of every runtime error."""


class RuntimeUnavailable(ContainerRuntimeError):
    """The container engine cannot be reached (transient: retry later)."""


class ImageNotPresent(ContainerRuntimeError):
    """The image is not on the node and the pull policy forbids pulling it (ErrImageNeverPull)."""


class ImagePullError(ContainerRuntimeError):
    """Pulling the image failed (ErrImagePull, then ImagePullBackOff)."""


class ContainerCreateError(ContainerRuntimeError):
    """The engine refused to create or start a container (CreateContainerError / RunContainerError)."""


class ContainerNotFound(ContainerRuntimeError):
    """The container is gone (already removed)."""


class ImageInUse(ContainerRuntimeError):
    """The image cannot be removed: a container (running or not) still uses it."""


class ExecTimeout(ContainerRuntimeError):
    """An exec in a container did not finish within its timeout (a probe counts it as a failure)."""
