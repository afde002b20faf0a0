"""The cloud's credentials: a self-signed CA, a serving certificate for loopback, a bearer token.

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

from edgeworkers.config import Settings

CONTEXT = "edgeworkers"
_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    cert: Path
    key: Path
    token: str


def ensure_credentials(data_dir: Path) -> Credentials:
    """The CA, serving certificate and token under ``data_dir``, made if missing.

    Held under an exclusive file lock: `cloud serve` and `edgeworkers kubeconfig` may both get here first,
    and must not each make a different CA.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, cert, key, token = (data_dir / n for n in ("ca.crt", "server.crt", "server.key", "token"))
    with open(data_dir / ".credentials.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ca_cert.exists() and cert.exists() and key.exists()):
            _make_certificates(ca_cert, cert, key)
        if not token.exists():
            _write_private(token, secrets.token_urlsafe(32).encode())
    return Credentials(ca_cert, cert, key, token.read_text().strip())


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(creds.cert, creds.key)
    return ctx


def kubeconfig_yaml(settings: Settings) -> str:
    """A kubeconfig for the cloud API: the CA inline, the server on 127.0.0.1, the bearer token."""
    creds = ensure_credentials(settings.cloud_data_dir)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {
                "server": f"https://127.0.0.1:{settings.cloud_port}",
                "certificate-authority-data": base64.b64encode(creds.ca_cert.read_bytes()).decode(),
            },
        }],
        "users": [{"name": CONTEXT, "user": {"token": creds.token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def _make_certificates(ca_path: Path, cert_path: Path, key_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeworkers-ca")])
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
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeworkers-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
