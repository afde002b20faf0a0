"""Who is calling: a client certificate, the administrator's token or a node's token; anyone else is 401.

The identities, as kube-apiserver's authenticators hand them to its authorizers:

- an x509 client certificate signed by the cloud's CA (``edgeworkers kubeconfig --client-certificate``): its common
  name is the user, its organizations the groups (the administrator's: ``edgeworkers:admin`` in ``system:masters``);
- the administrator's token (``cloud_data_dir/token``): user ``edgeworkers:admin`` in ``system:masters``;
- one identity per node (``system:node:<name>`` in ``system:nodes``), issued by
  ``edgeworkers cloud issue-node-credentials <name>`` and renewed by the node itself before it expires. The cloud
  keeps only the SHA-256 of each node's token, with the serial numbers of its serving certificates, in
  ``cloud_data_dir/node-tokens.json`` (0600); issuing again replaces them (rotation) and ``revoke-node-credentials``
  removes them. The server looks at the file's identity (inode, size, mtime) on every request, so a revoked token
  answers 401 on the very next request, and a revoked serving certificate is refused on the next call to the node.

Nothing answers an anonymous caller, the health checks included.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edgeworkers.k8s import status
from edgeworkers.privatefiles import ensure_private_dir, write_private

ADMIN_USER = "edgeworkers:admin"
MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
AUTHENTICATED = "system:authenticated"
TOKENS_FILE = "node-tokens.json"
DEFAULT_LIFETIME_S = 365 * 86400.0
# After a renewal, how long a node's previous token and serving certificate still work: every process of the node
# reads its token file again within a minute (kubeclient.TOKEN_FILE_TTL_S), and its endpoint loads its new certificate
# at once.
RENEWAL_GRACE_S = 300.0


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


class NodeTokens:
    """The nodes' credentials registry, re-read when it changes: per node, the SHA-256 of its live tokens and the
    serial numbers of its live serving certificates, each with its expiry (``{node: {"tokens": [{"digest", "expires"}],
    "serving": [{"serial", "expires"}]}}`` in a 0600 JSON file).

    ``issue`` (the administrator's command) replaces a node's credentials; ``renew`` (the node itself, through the
    API) adds new ones and keeps the previous ones only for ``RENEWAL_GRACE_S``, until every process of the node has
    read its new token and its endpoint serves its new certificate; ``revoke`` removes them all. An entry of an
    earlier version (a bare digest) is a token without expiry and no registered certificate: the node renews it on
    its next start."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self._dir = data_dir
        self._path = data_dir / TOKENS_FILE
        self._clock = clock
        self._seen: tuple[int, int, int] | None = None
        self._entries: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._by_digest: dict[str, tuple[str, float | None]] = {}

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, list[dict[str, Any]]]]]:
        ensure_private_dir(self._dir)
        with open(self._dir / ".credentials.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            yield entries
            write_private(self._path, json.dumps(entries, sort_keys=True).encode())

    def _read(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(node): entry if isinstance(entry, dict)
                else {"tokens": [{"digest": str(entry), "expires": None}], "serving": []}
                for node, entry in data.items()}

    def issue(self, node: str, lifetime_s: float = DEFAULT_LIFETIME_S, serving_serial: int | None = None) -> str:
        """A new token for ``node`` (and its serving certificate's serial), valid ``lifetime_s``; the node's previous
        credentials stop working (rotation)."""
        token = _new_token()
        expires = self._clock() + lifetime_s
        with self._locked() as entries:
            entries[node] = {"tokens": [{"digest": _digest(token), "expires": expires}],
                             "serving": [] if serving_serial is None else [{"serial": f"{serving_serial:x}",
                                                                           "expires": expires}]}
        return token

    def renew(self, node: str, lifetime_s: float, serving_serial: int) -> str | None:
        """A new token and serving certificate for ``node``, its previous ones kept ``RENEWAL_GRACE_S`` at most;
        None when the node has no credentials (revoked meanwhile)."""
        token = _new_token()
        now = self._clock()
        with self._locked() as entries:
            entry = entries.get(node)
            if entry is None:
                return None
            for kind, new in (("tokens", {"digest": _digest(token), "expires": now + lifetime_s}),
                              ("serving", {"serial": f"{serving_serial:x}", "expires": now + lifetime_s})):
                kept = [{**old, "expires": min(old["expires"] or now + RENEWAL_GRACE_S, now + RENEWAL_GRACE_S)}
                        for old in entry.get(kind, []) if _live(old, now)][-1:]
                entry[kind] = [*kept, new]
        return token

    def revoke(self, node: str) -> bool:
        """Remove ``node``'s credentials; False when it had none."""
        with self._locked() as entries:
            return entries.pop(node, None) is not None

    def nodes(self) -> list[str]:
        return sorted(self._read())

    def _fresh(self) -> None:
        try:
            st = os.stat(self._path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._entries = self._read() if seen else {}
            self._by_digest = {token["digest"]: (node, token["expires"])
                               for node, entry in self._entries.items() for token in entry.get("tokens", [])}
            self._seen = seen

    def lookup(self, token: str) -> str | None:
        """The node whose live token this is, or None; the file is read again whenever it changed."""
        self._fresh()
        found = self._by_digest.get(_digest(token))
        if found is None or not _live({"expires": found[1]}, self._clock()):
            return None
        return found[0]

    def serves(self, node: str, serial: int) -> bool:
        """Whether ``serial`` is a live serving certificate of ``node`` (neither revoked, replaced nor expired)."""
        self._fresh()
        now = self._clock()
        return any(int(cert["serial"], 16) == serial and _live(cert, now)
                   for cert in self._entries.get(node, {}).get("serving", []))


def _new_token() -> str:
    return f"{secrets.token_hex(3)}.{secrets.token_urlsafe(32)}"


def _live(entry: dict[str, Any], now: float) -> bool:
    return entry["expires"] is None or now < entry["expires"]


def certificate_identity(peercert: dict[str, Any] | None) -> Identity | None:
    """The identity of a verified x509 client certificate (``ssl.SSLObject.getpeercert()``), as kube-apiserver's x509
    authenticator reads it: the common name is the user, each organization a group. A certificate naming a node is
    refused: nodes authenticate with their token, which revocation and renewal cover."""
    if not peercert:
        return None
    attributes = [(key, value) for rdn in peercert.get("subject", ()) for key, value in rdn]
    user = next((value for key, value in attributes if key == "commonName"), "")
    if not user or user.startswith(NODE_PREFIX):
        return None
    groups = tuple(value for key, value in attributes if key == "organizationName")
    return Identity(user, (*groups, AUTHENTICATED))


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
    """Every request needs a client certificate signed by the cloud's CA (checked in the TLS handshake) or a known
    bearer token, the certificate first, as kube-apiserver's authenticators are ordered; the identity is put in
    ``request[IDENTITY_KEY]``."""

    @web.middleware
    async def authenticate_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        identity = (certificate_identity(transport.get_extra_info("peercert")) if transport is not None else None) \
            or authenticate(admin_token, nodes, request.headers.get("Authorization", ""))
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
