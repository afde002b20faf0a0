"""The cloud's credentials: a self-signed CA, a serving certificate for loopback, a bearer token; nodes' credentials.

Made on first start under ``settings.cloud_data_dir`` and reused afterwards, so a kubeconfig printed
once keeps working across restarts.
"""
from __future__ import annotations

import base64
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeworkers.cloud.auth import MASTERS, NodeTokens, ensure_private_dir, write_private
from edgeworkers.config import Settings

CONTEXT = "edgeworkers"
# The user the cloud is to a node's endpoint when it proxies logs (kube-apiserver's kubelet client).
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
MASTERS_GROUP = MASTERS
_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    cert: Path
    key: Path
    token: str
    ca_key: Path | None = None
    client_cert: Path | None = None  # the cloud's client certificate towards nodes (kube's --kubelet-client-certificate)
    client_key: Path | None = None


def ensure_credentials(data_dir: Path) -> Credentials:
    """The CA (and its key), serving certificate, client certificate towards nodes and admin token under
    ``data_dir`` (0700; keys and token 0600), made if missing.

    Held under an exclusive file lock: `cloud serve` and `edgeworkers kubeconfig` may both get here first,
    and must not each make a different CA. A data dir from before the CA's key was kept gets a new CA.
    """
    ensure_private_dir(data_dir)
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "kubelet-client.crt", "kubelet-client.key", "token")
    ca_cert, ca_key, cert, key, client_cert, client_key, token = (data_dir / n for n in names)
    with open(data_dir / ".credentials.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(p.exists() for p in (ca_cert, ca_key, cert, key)):
            _make_ca(ca_cert, ca_key)
            _issue(ca_cert, ca_key, cert, key, _name("edgeworkers-apiserver"), _LOOPBACK_NAMES, server=True)
        if not (client_cert.exists() and client_key.exists()):
            _issue(ca_cert, ca_key, client_cert, client_key,
                   _name(KUBELET_CLIENT_USER, MASTERS_GROUP), [], server=False)
        if not token.exists():
            write_private(token, secrets.token_urlsafe(32).encode())
        for private in (ca_key, key, client_key, token):
            os.chmod(private, 0o600)
    return Credentials(ca_cert, cert, key, token.read_text().strip(), ca_key, client_cert, client_key)


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(creds.cert, creds.key)
    return ctx


def node_client_context(creds: Credentials) -> ssl.SSLContext:
    """TLS towards a node's endpoint: its certificate must be signed by this CA; the cloud shows its client one."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(creds.ca_cert))  # hostnames checked: the
    # proxy asks for the node's name (server_hostname), which its certificate carries as a DNS subjectAltName
    if creds.client_cert and creds.client_key:
        ctx.load_cert_chain(creds.client_cert, creds.client_key)
    return ctx


def kubeconfig_yaml(settings: Settings) -> str:
    """A kubeconfig for the cloud API: the CA inline, the server on 127.0.0.1, the bearer token."""
    creds = ensure_credentials(settings.cloud_data_dir)
    return _kubeconfig(settings, creds, CONTEXT, creds.token)


def _kubeconfig(settings: Settings, creds: Credentials, user: str, token: str, ca_file: str | None = None) -> str:
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
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def node_credentials_dir(settings: Settings, node: str) -> Path:
    """Where ``issue-node-credentials`` writes a node's files by default (0700)."""
    return settings.cloud_data_dir / "nodes" / node


def issue_node_credentials(settings: Settings, node: str, out_dir: Path | None = None) -> Path:
    """Issue ``node`` a new token (its previous one stops working) and a serving certificate for its endpoint,
    signed by the cloud's CA; write ``kubeconfig``, ``node.crt``, ``node.key`` and ``ca.crt`` into ``out_dir``
    (0700, the kubeconfig and key 0600). Returns the kubeconfig's path."""
    if not node or "/" in node or node in (".", ".."):
        raise ValueError(f"not a node name: {node!r}")
    creds = ensure_credentials(settings.cloud_data_dir)
    out_dir = out_dir or node_credentials_dir(settings, node)
    if out_dir.parent == settings.cloud_data_dir / "nodes":
        ensure_private_dir(out_dir.parent)
    ensure_private_dir(out_dir)
    assert creds.ca_key is not None
    names: list[x509.GeneralName] = [x509.DNSName(node), *_LOOPBACK_NAMES]
    _issue(creds.ca_cert, creds.ca_key, out_dir / "node.crt", out_dir / "node.key",
           _name(f"system:node:{node}", "system:nodes"), names, server=True)
    (out_dir / "ca.crt").write_bytes(creds.ca_cert.read_bytes())
    token = NodeTokens(settings.cloud_data_dir).issue(node)
    kubeconfig = out_dir / "kubeconfig"
    # The CA by path: the node's client uses the file as it is, with no temporary copy to leak when it is killed.
    write_private(kubeconfig, _kubeconfig(settings, creds, f"system:node:{node}", token, "ca.crt").encode())
    return kubeconfig


def revoke_node_credentials(settings: Settings, node: str) -> bool:
    """Revoke ``node``'s token (401 from the next request on); False when it had none.

    Its files stay where they are, useless: a bridge on this machine bootstraps its credentials only when its
    kubeconfig is missing, so a revoked node stays out until ``issue-node-credentials`` is run for it again."""
    return NodeTokens(settings.cloud_data_dir).revoke(node)


_LOOPBACK_NAMES: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _make_ca(ca_path: Path, ca_key_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("edgeworkers-ca")
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
    write_private(ca_key_path, ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))


def _issue(ca_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path, subject: x509.Name,
           names: list[x509.GeneralName], *, server: bool) -> None:
    """A key and a certificate for ``subject`` signed by the CA: for serving (``names``) or as a client."""
    now = dt.datetime.now(dt.UTC)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
