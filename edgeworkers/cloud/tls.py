"""The cloud's credentials (two CAs, a serving certificate for loopback, a bearer token) and those it issues.

Two CAs, as kube keeps them apart:

- the cluster CA (``ca.crt``): the API server's serving certificate, and client certificates (the cloud's towards
  nodes, the administrator's); the only CA that the kubeconfigs trust for the API server;
- the kubelet-serving CA (``kubelet-serving-ca.crt``): nodes' serving certificates only, each naming its node alone
  (its name and its non-loopback address); the cloud trusts it to dial nodes and for nothing else, so no node's key
  can pose as the API server, nor as another node.

Made on first start under ``settings.cloud_data_dir`` and reused afterwards, so a kubeconfig printed
once keeps working across restarts.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeworkers.cloud.auth import ADMIN_USER, DEFAULT_LIFETIME_S, MASTERS, NODE_PREFIX, NODES_GROUP, NodeTokens
from edgeworkers.config import Settings
from edgeworkers.privatefiles import ensure_private_dir, write_private

log = structlog.get_logger(__name__)

CONTEXT = "edgeworkers"
NODE_TOKEN_FILE = "token"  # beside the node's kubeconfig, which names it as its tokenFile
# The user the cloud is to a node's endpoint when it proxies logs (kube-apiserver's kubelet client).
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
MASTERS_GROUP = MASTERS
_VALIDITY = dt.timedelta(days=3650)
SERVING_CA = "kubelet-serving-ca.crt"


@dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    cert: Path
    key: Path
    token: str
    ca_key: Path | None = None
    client_cert: Path | None = None  # the cloud's client certificate towards nodes (kube's --kubelet-client-certificate)
    client_key: Path | None = None
    serving_ca_cert: Path | None = None  # the kubelet-serving CA: nodes' serving certificates, and nothing else
    serving_ca_key: Path | None = None


def ensure_credentials(data_dir: Path, lifetime_s: float = DEFAULT_LIFETIME_S) -> Credentials:
    """The two CAs (and their keys), the serving certificate, the client certificate towards nodes and the admin token
    under ``data_dir`` (0700; keys and token 0600), made if missing. The cloud's own certificates are valid
    ``lifetime_s`` and issued again once past 80 % of their lifetime, or when longer than it (an earlier version's);
    the CAs are valid ten years.

    Held under an exclusive file lock: `cloud serve` and `edgeworkers kubeconfig` may both get here first,
    and must not each make a different CA. A data dir from before the CA's key was kept gets a new CA.
    """
    lifetime = dt.timedelta(seconds=lifetime_s)
    ensure_private_dir(data_dir)
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "kubelet-client.crt", "kubelet-client.key", "token",
             SERVING_CA, "kubelet-serving-ca.key")
    ca_cert, ca_key, cert, key, client_cert, client_key, token, serving_ca, serving_ca_key = (
        data_dir / n for n in names)
    with open(data_dir / ".credentials.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(p.exists() for p in (ca_cert, ca_key, cert, key)):
            _make_ca(ca_cert, ca_key, "edgeworkers-ca")
            _issue(ca_cert, ca_key, cert, key, _name("edgeworkers-apiserver"), _LOOPBACK_NAMES, lifetime, server=True)
        elif _due(cert, lifetime):
            _issue(ca_cert, ca_key, cert, key, _name("edgeworkers-apiserver"), _LOOPBACK_NAMES, lifetime, server=True)
        if not (client_cert.exists() and client_key.exists()) or _due(client_cert, lifetime):
            _issue(ca_cert, ca_key, client_cert, client_key,
                   _name(KUBELET_CLIENT_USER, MASTERS_GROUP), [], lifetime, server=False)
        if not (serving_ca.exists() and serving_ca_key.exists()):
            _make_ca(serving_ca, serving_ca_key, "edgeworkers-kubelet-serving-ca")
        if not token.exists():
            write_private(token, secrets.token_urlsafe(32).encode())
        for private in (ca_key, key, client_key, token, serving_ca_key):
            os.chmod(private, 0o600)
    return Credentials(ca_cert, cert, key, token.read_text().strip(), ca_key, client_cert, client_key, serving_ca,
                       serving_ca_key)


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    """The API server's TLS: its certificate; a client certificate signed by the cluster CA is asked for, not
    required (the token authenticates the callers without one)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(creds.ca_cert))
    ctx.load_cert_chain(creds.cert, creds.key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def node_client_context(creds: Credentials) -> ssl.SSLContext:
    """TLS towards a node's endpoint: its certificate must be signed by the kubelet-serving CA (never the cluster CA);
    the cloud shows its client one."""
    assert creds.serving_ca_cert is not None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(creds.serving_ca_cert))  # hostnames
    # checked: the proxy asks for the node's name (server_hostname), which its certificate carries as its DNS name
    if creds.client_cert and creds.client_key:
        ctx.load_cert_chain(creds.client_cert, creds.client_key)
    return ctx


class OwnCertificates:
    """The cloud's own TLS contexts, as the API server (``server``) and towards nodes (``to_nodes``), whose
    certificates ``run`` renews before they expire and loads again in place (new connections use them at once)."""

    def __init__(self, data_dir: Path, lifetime_s: float) -> None:
        self._data_dir = data_dir
        self._lifetime_s = lifetime_s
        self.creds = ensure_credentials(data_dir, lifetime_s)
        self.server = ssl_context(self.creds)
        self.to_nodes = node_client_context(self.creds)

    def renew(self) -> None:
        """Issue again what is due (``ensure_credentials``) and load it."""
        creds = ensure_credentials(self._data_dir, self._lifetime_s)
        self.server.load_cert_chain(creds.cert, creds.key)
        assert creds.client_cert is not None and creds.client_key is not None
        self.to_nodes.load_cert_chain(creds.client_cert, creds.client_key)

    async def run(self) -> None:
        period = min(3600.0, self._lifetime_s / 50)
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(self.renew)
            except (OSError, ValueError, ssl.SSLError) as exc:  # a file mid-write by another command: next time
                log.warning("could not renew the cloud's own certificates", error=str(exc))


def kubeconfig_yaml(settings: Settings) -> str:
    """A kubeconfig for the cloud API: the CA inline, the server on 127.0.0.1, the bearer token."""
    creds = ensure_credentials(settings.cloud_data_dir, settings.credential_lifetime_s)
    return _kubeconfig(settings, creds, CONTEXT, {"token": creds.token})


def client_certificate_kubeconfig_yaml(settings: Settings, user: str = ADMIN_USER,
                                       groups: tuple[str, ...] = (MASTERS,)) -> str:
    """A kubeconfig for the cloud API whose identity is a new client certificate (CN ``user``, O ``groups``) signed
    by the cluster CA, valid ``credential_lifetime_s``, its key inline (``client-key-data``)."""
    creds = ensure_credentials(settings.cloud_data_dir, settings.credential_lifetime_s)
    key = ec.generate_private_key(ec.SECP256R1())
    assert creds.ca_key is not None
    cert = _sign(creds.ca_cert, creds.ca_key, _name(user, *groups), key.public_key(), [], server=False,
                 lifetime=dt.timedelta(seconds=settings.credential_lifetime_s))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return _kubeconfig(settings, creds, user, {
        "client-certificate-data": base64.b64encode(pem).decode(),
        "client-key-data": base64.b64encode(_key_pem(key)).decode(),
    })


def _kubeconfig(settings: Settings, creds: Credentials, user: str, credential: dict[str, str],
                ca_file: str | None = None) -> str:
    """A kubeconfig with the CA inline, or as ``ca_file`` (relative to the kubeconfig's directory)."""
    ca = ({"certificate-authority": ca_file} if ca_file
          else {"certificate-authority-data": base64.b64encode(creds.ca_cert.read_bytes()).decode()})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {
                "server": f"https://127.0.0.1:{settings.cloud_port}",
                **ca,
            },
        }],
        "users": [{"name": user, "user": credential}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def node_credentials_dir(settings: Settings, node: str) -> Path:
    """Where ``issue-node-credentials`` writes a node's files by default (0700)."""
    return settings.cloud_data_dir / "nodes" / node


def issue_node_credentials(settings: Settings, node: str, out_dir: Path | None = None,
                           address: str | None = None) -> Path:
    """Issue ``node`` a new token (its previous credentials stop working) and a serving certificate for its endpoint
    (signed by the kubelet-serving CA, naming ``node`` and ``address`` unless it is a loopback one), both valid
    ``credential_lifetime_s``; write ``kubeconfig`` (the token by ``tokenFile``), ``token``, ``node.crt``,
    ``node.key`` and ``ca.crt`` (the cluster CA) into ``out_dir`` (0700, the token, kubeconfig and key 0600).
    Returns the kubeconfig's path. Also the documented way back for a node whose credentials expired: its pods are
    not touched, and the node loads the new files by itself."""
    _check_node_name(node)
    creds = ensure_credentials(settings.cloud_data_dir, settings.credential_lifetime_s)
    out_dir = out_dir or node_credentials_dir(settings, node)
    if out_dir.parent == settings.cloud_data_dir / "nodes":
        ensure_private_dir(out_dir.parent)
    ensure_private_dir(out_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign_serving_certificate(settings, creds, node, key.public_key(), address)
    write_private(out_dir / "node.key", _key_pem(key))
    (out_dir / "node.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out_dir / "ca.crt").write_bytes(creds.ca_cert.read_bytes())
    token = NodeTokens(settings.cloud_data_dir).issue(node, settings.credential_lifetime_s, cert.serial_number)
    write_private(out_dir / NODE_TOKEN_FILE, token.encode())
    kubeconfig = out_dir / "kubeconfig"
    # The CA and the token by path: the node's client uses the files as they are, with no temporary copy to leak
    # when it is killed, and reads the token file again after a renewal.
    write_private(kubeconfig, _kubeconfig(settings, creds, f"{NODE_PREFIX}{node}", {"tokenFile": NODE_TOKEN_FILE},
                                          "ca.crt").encode())
    return kubeconfig


def sign_serving_certificate(settings: Settings, creds: Credentials, node: str, public_key: ec.EllipticCurvePublicKey,
                             address: str | None) -> x509.Certificate:
    """``node``'s serving certificate for ``public_key``, from the kubelet-serving CA: subject
    ``system:node:<node>`` in ``system:nodes`` (kube's kubelet-serving signer's), subjectAltNames the node's name and
    ``address`` (an IP address or a host name) unless it is a loopback or unspecified one (a loopback address names
    every machine, no node)."""
    names: list[x509.GeneralName] = [x509.DNSName(node)]
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:  # a host name, or none
        if address and address.lower() not in ("localhost", node):
            names.append(x509.DNSName(address))
    else:
        if not (ip.is_loopback or ip.is_unspecified):
            names.append(x509.IPAddress(ip))
    assert creds.serving_ca_cert is not None and creds.serving_ca_key is not None
    return _sign(creds.serving_ca_cert, creds.serving_ca_key, _name(f"{NODE_PREFIX}{node}", NODES_GROUP), public_key,
                 names, server=True, lifetime=dt.timedelta(seconds=settings.credential_lifetime_s))


def revoke_node_credentials(settings: Settings, node: str) -> bool:
    """Revoke ``node``'s token and serving certificates (refused from the next request or connection on); False when
    it had none.

    Its files stay where they are, useless: a bridge on this machine bootstraps its credentials only when its
    kubeconfig is missing, so a revoked node stays out until ``issue-node-credentials`` is run for it again."""
    return NodeTokens(settings.cloud_data_dir).revoke(node)


def _check_node_name(node: str) -> None:
    if not node or "/" in node or node in (".", ".."):
        raise ValueError(f"not a node name: {node!r}")


_LOOPBACK_NAMES: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


def _name(common_name: str, *organizations: str) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_ca(ca_path: Path, ca_key_path: Path, common_name: str) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(common_name)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(ca_key_path, _key_pem(ca_key))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _due(cert_path: Path, lifetime: dt.timedelta) -> bool:
    """Whether the certificate is past 80 % of its lifetime, or longer-lived than ``lifetime`` allows."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return _now() >= start + (end - start) * 0.8 or end - start > lifetime * 1.1


def _issue(ca_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path, subject: x509.Name,
           names: list[x509.GeneralName], lifetime: dt.timedelta, *, server: bool) -> None:
    """A key and a certificate for ``subject`` signed by the CA, written to the paths (the key first)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(ca_path, ca_key_path, subject, key.public_key(), names, server=server, lifetime=lifetime)
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _sign(ca_path: Path, ca_key_path: Path, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
          names: list[x509.GeneralName], *, server: bool, lifetime: dt.timedelta) -> x509.Certificate:
    """A certificate for ``subject``'s ``public_key`` signed by the CA: for serving (``names``) or as a client."""
    now = dt.datetime.now(dt.UTC)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    backdate = min(dt.timedelta(minutes=5), lifetime / 10)  # other machines' clocks a little behind
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate).not_valid_after(now + lifetime)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())
