"""Who is calling: the administrator's token or a node's token; anyone else is 401.

Two kinds of identity, as kube-apiserver's token authenticators hand them to its authorizers:

- the administrator (the token in ``cloud_data_dir/token``): user ``edgeworkers:admin`` in ``system:masters``;
- one identity per node (``system:node:<name>`` in ``system:nodes``), issued by
  ``edgeworkers cloud issue-node-credentials <name>``. The cloud keeps only the SHA-256 of each node's token, in
  ``cloud_data_dir/node-tokens.json`` (0600); issuing again replaces the token (rotation) and
  ``revoke-node-credentials`` removes it. The server looks at the file's identity (inode, size, mtime) on every
  request, so a revoked token answers 401 on the very next request.

Nothing answers an anonymous caller, the health checks included.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edgeworkers.k8s import status

ADMIN_USER = "edgeworkers:admin"
MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
AUTHENTICATED = "system:authenticated"
TOKENS_FILE = "node-tokens.json"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]

    @property
    def node(self) -> str | None:
        """The node's name for a node identity (kube's ``NodeIdentifier``), else None."""
        if NODES_GROUP in self.groups and self.user.startswith(NODE_PREFIX):
            return self.user[len(NODE_PREFIX):] or None
        return None


ADMIN = Identity(ADMIN_USER, (MASTERS, AUTHENTICATED))
IDENTITY_KEY = web.RequestKey("identity", Identity)


def node_identity(node: str) -> Identity:
    return Identity(NODE_PREFIX + node, (NODES_GROUP, AUTHENTICATED))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_private_dir(path: Path) -> None:
    """``path`` as a directory only its owner may enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class NodeTokens:
    """The node tokens' registry: ``{node: sha256(token)}`` in a 0600 JSON file, re-read when it changes."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._path = data_dir / TOKENS_FILE
        self._seen: tuple[int, int, int] | None = None
        self._by_digest: dict[str, str] = {}

    @contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        ensure_private_dir(self._dir)
        with open(self._dir / ".credentials.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            digests = self._read()
            yield digests
            write_private(self._path, json.dumps(digests, sort_keys=True).encode())

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def issue(self, node: str) -> str:
        """A new token for ``node``; the node's previous token stops working (rotation)."""
        token = f"{secrets.token_hex(3)}.{secrets.token_urlsafe(32)}"
        with self._locked() as digests:
            digests[node] = _digest(token)
        return token

    def revoke(self, node: str) -> bool:
        """Remove ``node``'s token; False when it had none."""
        with self._locked() as digests:
            return digests.pop(node, None) is not None

    def nodes(self) -> list[str]:
        return sorted(self._read())

    def lookup(self, token: str) -> str | None:
        """The node whose token this is, or None; the file is read again whenever it changed."""
        try:
            st = os.stat(self._path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._by_digest = {digest: node for node, digest in self._read().items()} if seen else {}
            self._seen = seen
        return self._by_digest.get(_digest(token))


def authenticate(admin_token: str, nodes: NodeTokens, authorization: str) -> Identity | None:
    """The identity an ``Authorization`` header proves, or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    token = token.strip()
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return ADMIN
    node = nodes.lookup(token)
    return node_identity(node) if node else None


def token_auth(admin_token: str, nodes: NodeTokens) -> Middleware:
    """Every request needs a known bearer token; its identity is put in ``request[IDENTITY_KEY]``."""

    @web.middleware
    async def authenticate_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        identity = authenticate(admin_token, nodes, request.headers.get("Authorization", ""))
        if identity is None:
            raise status.unauthorized()
        request[IDENTITY_KEY] = identity
        return await handler(request)

    return authenticate_request


def identity_of(request: web.Request) -> Identity:
    identity = request.get(IDENTITY_KEY)
    if identity is None:  # a route outside the middleware: refuse rather than guess
        raise status.unauthorized()
    return identity
