"""The node keeps its own credentials alive: it renews them through the API before they expire, its endpoint serves
a new certificate as soon as it is on disk, and an expired or revoked node says what brings it back.

As kubelet's certificate manager: after 70-90 % of the serving certificate's lifetime (a random point per
certificate, so a fleet issued together does not renew together) the node makes a new key, sends a CSR for it to
``POST /apis/edgeworkers.io/v1/nodecredentialrequests`` with its current token, and writes what comes back (``node.key``,
``node.crt``, ``token``, 0600) beside its kubeconfig; the key never leaves the node. A certificate from an earlier
version (signed by the cluster CA, not the kubelet-serving one) is renewed at once.

The same files also arrive from outside: ``edgeworkers cloud issue-node-credentials`` run again, the documented way
back for a node whose credentials expired (or were revoked). The node notices them (their modification time) and
takes them without a restart; its pods are never touched.
"""
from __future__ import annotations

import base64
import random
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable
from edgeworkers.privatefiles import write_private

log = structlog.get_logger(__name__)

PATH = "/apis/edgeworkers.io/v1/nodecredentialrequests"
RENEW_FROM, RENEW_JITTER = 0.7, 0.2  # kubelet's: renew at a random point between 70 % and 90 % of the lifetime
MAX_CHECK_PERIOD_S = 60.0
TOKEN_FILE = "token"


def reissue_command(node: str) -> str:
    return f"edgeworkers cloud issue-node-credentials {node}"


class NodeCredentials:
    """The credentials in ``directory`` (``node.crt``, ``node.key``, ``token``, ``kubeconfig``, ``ca.crt``) of node
    ``node``; ``tls`` is the endpoint's context, which loads a new certificate in place."""

    def __init__(self, directory: Path, node: str, tls: ssl.SSLContext | None,
                 clock: Callable[[], float] = time.time, jitter: Callable[[], float] = random.random) -> None:
        self._dir = directory
        self._node = node
        self._tls = tls
        self._clock = clock
        self._jitter = jitter
        self._loaded = self._stamp()
        self._token_stamp = self._stamp(TOKEN_FILE)
        self._renew_at: tuple[int, float] | None = None  # (serial, when)
        self._reported: int | None = None  # the expired or refused certificate already reported
        self._unsupported = False

    def _stamp(self, name: str = "node.crt") -> tuple[int, int] | None:
        try:
            st = (self._dir / name).stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def check(self, api: ApiClient) -> float:
        """One look: take new files, report an expired certificate, renew a due one. Returns how long to wait before
        the next look."""
        self._take_new_files(api)
        try:
            cert = x509.load_pem_x509_certificate((self._dir / "node.crt").read_bytes())
        except (OSError, ValueError):
            return MAX_CHECK_PERIOD_S  # no certificate: nothing to keep alive
        start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
        period = min(MAX_CHECK_PERIOD_S, max(1.0, (end - start) / 50))
        now = self._clock()
        if now >= end:
            self._report(cert, f"this node's credentials expired at {cert.not_valid_after_utc.isoformat()}")
            return period
        if self._unsupported:
            return MAX_CHECK_PERIOD_S
        if self._renew_at is None or self._renew_at[0] != cert.serial_number:
            when = start + (end - start) * (RENEW_FROM + RENEW_JITTER * self._jitter())
            self._renew_at = (cert.serial_number, start if self._legacy(cert) else when)
        if now >= self._renew_at[1]:
            self._renew(api, cert)
        return period

    def _legacy(self, cert: x509.Certificate) -> bool:
        """Signed by the cluster CA (``ca.crt``): an earlier version's certificate, which the cloud no longer trusts
        for a node."""
        try:
            return cert.issuer == x509.load_pem_x509_certificate((self._dir / "ca.crt").read_bytes()).subject
        except (OSError, ValueError):
            return False

    def _take_new_files(self, api: ApiClient) -> None:
        stamp = self._stamp()
        if stamp != self._loaded and stamp is not None:
            if self._tls is not None:
                self._tls.load_cert_chain(self._dir / "node.crt", self._dir / "node.key")
            self._loaded = stamp
            log.info("node endpoint serves its new certificate", node=self._node)
        token = self._stamp(TOKEN_FILE)
        if token != self._token_stamp and token is not None:
            api.use_token_file(str(self._dir / TOKEN_FILE))
            self._token_stamp = token

    def _renew(self, api: ApiClient, cert: x509.Certificate) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{self._node}")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(self._node)]), critical=False)
               .sign(key, hashes.SHA256()))
        body = {"apiVersion": "edgeworkers.io/v1", "kind": "NodeCredentialRequest",
                "spec": {"request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()}}
        try:
            granted = api.post(PATH, body)["status"]
            new_cert = base64.b64decode(granted["certificate"], validate=True)
            token = granted["token"]
        except CloudUnavailable as exc:
            log.warning("could not renew this node's credentials yet", node=self._node, error=str(exc))
            return
        except ApiError as exc:
            if exc.code in (401, 403):
                self._report(cert, f"the cloud refused to renew this node's credentials ({exc.code} {exc.reason})")
            elif exc.code in (404, 405):
                self._unsupported = True
                log.warning("the API server does not renew node credentials: renew them by hand before they expire",
                            node=self._node, expires=cert.not_valid_after_utc.isoformat())
            else:
                log.warning("could not renew this node's credentials", node=self._node, error=str(exc))
            return
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("the cloud's answer to a renewal is malformed", node=self._node, error=type(exc).__name__)
            return
        write_private(self._dir / "node.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (self._dir / "node.crt").write_bytes(new_cert)
        write_private(self._dir / TOKEN_FILE, token.encode())
        self._token_by_file()
        self._take_new_files(api)
        log.info("renewed this node's credentials", node=self._node,
                 expires=x509.load_pem_x509_certificate(new_cert).not_valid_after_utc.isoformat())

    def _token_by_file(self) -> None:
        """A kubeconfig of an earlier version holds its token inline: name the token file instead, so every process of
        the node (the worker's remote queries included) reads the renewed one."""
        path = self._dir / "kubeconfig"
        try:
            config = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return
        changed = False
        for entry in (config or {}).get("users") or []:
            user = entry.get("user") or {}
            if "token" in user:
                del user["token"]
                user["tokenFile"] = TOKEN_FILE
                changed = True
        if changed:
            write_private(path, yaml.safe_dump(config, sort_keys=False).encode())

    def _report(self, cert: x509.Certificate, what: str) -> None:
        """Say once per certificate why the cloud refuses this node, and what brings it back."""
        if self._reported == cert.serial_number:
            return
        self._reported = cert.serial_number
        log.error(f"{what}: the cloud refuses this node until it is issued new credentials. On the cloud, run "
                  f"`{reissue_command(self._node)} --output-dir DIR` and copy DIR's files into {self._dir} (on the "
                  "cloud's own machine, without --output-dir): this node takes them without a restart, and its "
                  "pods keep running meanwhile", node=self._node)

    def run(self, api: ApiClient, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                period = self.check(api)
            except Exception:
                log.exception("node credentials check crashed")
                period = MAX_CHECK_PERIOD_S
            stop.wait(period)


def keeper(directory: Path, node: str, tls: ssl.SSLContext | None) -> Callable[[ApiClient], Callable[
        [threading.Event], None]]:
    """The bridge's loop factory (``run_bridge``'s ``extra``) that keeps this node's credentials alive."""
    credentials = NodeCredentials(directory, node, tls)
    return lambda api: lambda stop: credentials.run(api, stop)
