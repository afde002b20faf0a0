"""Files only their owner may read: keys, tokens, kubeconfigs (0600 in 0700 directories). Shared by the cloud, which
issues credentials, and the node, which renews its own."""
from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path


def ensure_private_dir(path: Path) -> None:
    """``path`` as a directory only its owner may enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte.

    The data goes to an unnamed file in the same directory (``O_TMPFILE``), named only once complete and renamed into
    place at once: a process killed while writing leaves nothing behind."""
    fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o600)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            # A src_dir_fd makes CPython call linkat(2) with AT_SYMLINK_FOLLOW: link(2) would link the /proc entry.
            os.link(f"/proc/self/fd/{f.fileno()}", tmp, src_dir_fd=root)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(root)
