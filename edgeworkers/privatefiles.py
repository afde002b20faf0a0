"""Files only their owner may read: keys, tokens, kubeconfigs (0600 in 0700 directories). Shared by the cloud, which
issues credentials, and the node, which renews its own."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def ensure_private_dir(path: Path) -> None:
    """``path`` as a directory only its owner may enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte; a process killed midway leaves at most a
    hidden temporary file in the same (private) directory, which the next write of the same file does not reuse."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
