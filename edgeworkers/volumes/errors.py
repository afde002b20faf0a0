"""What can stop a pod's volumes from being ready. Messages name objects and paths, never a secret's data."""
from __future__ import annotations


class VolumeError(Exception):
    """A volume cannot be set up now: the pod's containers wait (``ContainerCreating``) and the sync looks again."""

    reason = "ContainerCreating"


class ConfigSourceError(VolumeError):
    """A configmap, secret or key the pod needs is missing (or a volume source the node refuses): kubelet's
    ``CreateContainerConfigError``. Looked at again on later syncs, so the pod starts once the object arrives."""

    reason = "CreateContainerConfigError"


class UnsafePath(ConfigSourceError):
    """A path from the pod's spec, or a symlink inside a volume, would lead outside its directory: refused, and
    nothing is written or mounted."""
