"""A node renews its own credentials through the API; the cloud dials only nodes whose certificate is live.

``POST /apis/edgeworkers.io/v1/nodecredentialrequests``: this cloud's counterpart of kubelet's certificate rotation (a
``CertificateSigningRequest`` for the ``kubernetes.io/kubelet-serving`` signer, approved and signed at once), simpler
because the only request it grants is a node renewing its own credentials, so there is nothing to approve::

    {"apiVersion": "edgeworkers.io/v1", "kind": "NodeCredentialRequest",
     "spec": {"request": "<base64 of a PEM CSR for the node's new serving key>"}}

answers 201 with the request and its ``status``: ``certificate`` (base64 PEM, signed by the kubelet-serving CA for the
caller's node, whatever names the CSR asks for), ``token`` (the node's new bearer token) and ``expirationTimestamp``.
Only a node identity may ask (403 otherwise), and only for itself: the node is the caller, never a field of the
request. The key never leaves the node. The node's previous token and certificate stay valid for a few minutes
(``auth.RENEWAL_GRACE_S``) while its processes take the new ones.

``NodeConnector``: every connection the cloud opens to a node's endpoint (logs, exec, attach, port-forward) is new
(no keep-alive) and is refused unless the certificate the node shows is one of its live serving certificates in the
registry, so a revoked, replaced or expired certificate is refused from the next connection on.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeworkers.cloud.auth import NodeTokens, identity_of
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.tls import Credentials, sign_serving_certificate
from edgeworkers.cloud.wire import decode_json, json_response
from edgeworkers.config import Settings
from edgeworkers.k8s import status
from edgeworkers.k8s.timefmt import format_time

log = structlog.get_logger(__name__)

GROUP = "edgeworkers.io"
RESOURCE = "nodecredentialrequests"
PATH = f"/apis/{GROUP}/v1/{RESOURCE}"


class NodeCredentialRequests:
    """The renewal endpoint's handler."""

    def __init__(self, settings: Settings, creds: Credentials, registry: NodeTokens, store: Store) -> None:
        self._settings = settings
        self._creds = creds
        self._registry = registry
        self._store = store

    async def create(self, request: web.Request) -> web.Response:
        identity = identity_of(request)
        node = identity.node
        if node is None:
            raise status.forbidden(RESOURCE, "", f'User "{identity.user}" cannot create resource "{RESOURCE}" in API '
                                   f'group "{GROUP}" at the cluster scope: only a node renews its own credentials',
                                   GROUP)
        body = decode_json(await request.read())
        public_key = _requested_key(body)
        cert = sign_serving_certificate(self._settings, self._creds, node, public_key, self._internal_ip(node))
        token = self._registry.renew(node, self._settings.credential_lifetime_s, cert.serial_number)
        if token is None:  # revoked between authentication and now
            raise status.unauthorized()
        log.info("renewed a node's credentials", node=node, expires=format_time(cert.not_valid_after_utc))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return json_response({
            "apiVersion": f"{GROUP}/v1", "kind": "NodeCredentialRequest",
            "spec": {"username": identity.user, "groups": list(identity.groups)},
            "status": {"certificate": base64.b64encode(pem).decode(), "token": token,
                       "expirationTimestamp": format_time(cert.not_valid_after_utc)},
        }, 201)

    def _internal_ip(self, node: str) -> str | None:
        """The address the node reports (its Node's InternalIP), which its certificate names unless loopback."""
        try:
            addresses = (self._store.get("nodes", "", node).get("status") or {}).get("addresses") or []
        except status.APIError:
            return None
        return next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), None)


def _requested_key(body: Any) -> ec.EllipticCurvePublicKey:
    """The public key of the request's CSR, whose signature proves the node holds the key; 400 otherwise."""
    request = ((body.get("spec") or {}) if isinstance(body, dict) else {}).get("request")
    if not isinstance(request, str):
        raise status.bad_request("spec.request: Required value: a base64 PEM certificate signing request")
    try:
        csr = x509.load_pem_x509_csr(base64.b64decode(request, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise status.bad_request(f"spec.request: Invalid value: not a PEM certificate signing request: {exc}") from exc
    key = csr.public_key()
    if not csr.is_signature_valid or not isinstance(key, ec.EllipticCurvePublicKey):
        raise status.bad_request("spec.request: Invalid value: the request must be an ECDSA CSR signed by its key")
    return key


class RevokedNodeCertificate(aiohttp.ClientConnectionError):
    """The node showed a certificate that is not one of its live serving certificates."""


class NodeConnector(aiohttp.TCPConnector):
    """A connector to nodes' endpoints that checks each new connection's certificate against the registry (the TLS
    handshake has already checked its CA, its expiry and that it names the node dialled)."""

    def __init__(self, registry: NodeTokens, **kwargs: Any) -> None:
        super().__init__(force_close=True, **kwargs)
        self._registry = registry

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        proto = await super()._create_connection(req, traces, timeout)
        node = req.server_hostname
        peer = proto.transport.get_extra_info("peercert") if proto.transport is not None else None
        if not node or not peer or not self._registry.serves(node, int(peer.get("serialNumber", "0"), 16)):
            proto.close()
            log.warning("refused a node's serving certificate", node=node,
                        expires=(peer or {}).get("notAfter"))
            raise RevokedNodeCertificate(f"node {node}'s serving certificate is revoked, replaced or unknown: "
                                         f"the node must renew or be issued new credentials")
        return proto
