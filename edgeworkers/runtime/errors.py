"""Errors raised by a Runtime; the sync loop maps them to Kubernetes waiting reasons."""
from __future__ import annotations


class RuntimeFault(Exception):
    """Base class of everything a Runtime raises."""


class RuntimeUnavailable(RuntimeFault):
    """The container engine cannot be reached (transient: the caller retries later).

    Not a ContainerRuntimeError: the engine never answered, so no container may be reported as refused for it.
    """


class ContainerRuntimeError(RuntimeFault):
    """The engine answered and refused an operation on a container or an image (a pod's status says why)."""


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
