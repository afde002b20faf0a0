"""The node's key for secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``.

The key lives in a 0600 file in a 0700 directory under the agent's data directory, made on first use (by whichever
agent process comes first: the file is created exclusively, so two processes never hold different keys). Redis never
sees it, so a copy of Redis' append-only file reveals no secret value.
"""
from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_FILE = "secrets.key"


class Cipher:
    """Encrypts and decrypts bytes with the node's key; a wrong key or a damaged value is ``SecretUnreadable``.

    ``cryptography`` (about 7 MB) is imported on the first secret, not before: most edge processes never see one; a
    key given as a function is read then too (a command that reads no secret never touches the key file), and read
    again when a value does not decrypt: a key file replaced under a running process is then used from that moment,
    so the processes of the node never keep writing with a key the others no longer hold."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key = key
        self._loaded: bytes | None = None

    @cached_property
    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet

        self._loaded = self._key if isinstance(self._key, bytes) else self._key()
        return Fernet(self._loaded)

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        for attempt in range(2):
            try:
                return self._fernet.decrypt(token)
            except InvalidToken:
                if attempt or not self._reloaded():
                    break
        raise SecretUnreadable("a stored secret cannot be decrypted with this node's key")

    def _reloaded(self) -> bool:
        """Whether the key, read again, changed (then it is used from now on)."""
        if isinstance(self._key, bytes) or self._key() == self._loaded:
            return False
        del self._fernet  # the cached property: read again on next use
        return True


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with the node's key (the key file was replaced, or the value damaged)."""


def load_key(data_dir: Path) -> bytes:
    """The key in ``data_dir/secrets.key``, made (0600, directory 0700) when absent.

    A new key is written to a temporary file and linked into place, which fails when another process linked its
    own first: then that one is read. So every process of the node holds the same key, and none reads a half file.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    path = data_dir / KEY_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secrets.key.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(base64.urlsafe_b64encode(os.urandom(32)))  # Fernet.generate_key()'s, without its import
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes().strip()


def node_cipher(data_dir: Path) -> Cipher:
    """The node's cipher; its key is loaded (made, the first time) when the first secret is read or written."""
    return Cipher(lambda: load_key(data_dir))
