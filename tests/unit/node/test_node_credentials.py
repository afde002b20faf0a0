"""The node keeps its credentials alive: it renews at its renewal point, serves the new certificate at once, takes
reissued files without a restart, and says once what brings back an expired or refused node."""
from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgeworkers.cloud.auth import NodeTokens
from edgeworkers.cloud.tls import ensure_credentials, issue_node_credentials, sign_serving_certificate
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiError, CloudUnavailable
from edgeworkers.node import server
from edgeworkers.node.credentials import PATH, NodeCredentials


class FakeApi:
    """The renewal endpoint as the cloud answers it (signing the CSR's key for the node), or ``error``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests: list[dict[str, Any]] = []
        self.token_files: list[str] = []
        self.error: Exception | None = None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path == PATH
        self.requests.append(body)
        if self.error is not None:
            raise self.error
        csr = x509.load_pem_x509_csr(base64.b64decode(body["spec"]["request"]))
        assert csr.is_signature_valid
        cert = sign_serving_certificate(self.settings, ensure_credentials(self.settings.cloud_data_dir), "edge-1",
                                        csr.public_key(), None)  # type: ignore[arg-type]
        token = NodeTokens(self.settings.cloud_data_dir).renew("edge-1", 100, cert.serial_number)
        return {"status": {"certificate": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
                           "token": token}}

    def use_token_file(self, path: str) -> None:
        self.token_files.append(path)


def cert_of(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / "node.crt").read_bytes())


@pytest.fixture
def short(settings: Settings) -> Settings:
    return settings.model_copy(update={"credential_lifetime_s": 100.0})


def keeper(directory: Path, now: list[float], tls: ssl.SSLContext | None = None) -> NodeCredentials:
    return NodeCredentials(directory, "edge-1", tls, clock=lambda: now[0], jitter=lambda: 0.5)


def test_renews_at_its_point_and_serves_the_new_certificate_at_once(short: Settings) -> None:
    directory = issue_node_credentials(short, "edge-1").parent
    first = cert_of(directory)
    start = first.not_valid_before_utc.timestamp()
    span = first.not_valid_after_utc.timestamp() - start
    now = [start + span * 0.79]  # the point: 70 % + 0.5 x 20 % = 80 %
    tls = server.tls_context(directory)
    api = FakeApi(short)
    credentials = keeper(directory, now, tls)
    assert credentials.check(api) == pytest.approx(span / 50)  # type: ignore[arg-type]
    assert api.requests == []
    now[0] = start + span * 0.8
    credentials.check(api)  # type: ignore[arg-type]
    renewed = cert_of(directory)
    assert renewed.serial_number != first.serial_number and len(api.requests) == 1
    key = serialization.load_pem_private_key((directory / "node.key").read_bytes(), None)
    assert key.public_key().public_numbers() == renewed.public_key().public_numbers()  # type: ignore[union-attr]
    assert api.token_files == [str(directory / "token")]
    assert NodeTokens(short.cloud_data_dir).lookup((directory / "token").read_text()) == "edge-1"
    assert {oct(p.stat().st_mode & 0o777) for p in (directory / "node.key", directory / "token")} == {"0o600"}
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_takes_reissued_files_without_a_restart(short: Settings) -> None:
    directory = issue_node_credentials(short, "edge-1").parent
    now = [cert_of(directory).not_valid_before_utc.timestamp()]
    api = FakeApi(short)
    credentials = keeper(directory, now, server.tls_context(directory))
    credentials.check(api)  # type: ignore[arg-type]
    assert api.token_files == []
    issue_node_credentials(short, "edge-1")  # the administrator's command, run again
    credentials.check(api)  # type: ignore[arg-type]
    assert api.token_files == [str(directory / "token")] and api.requests == []


def test_an_expired_node_says_once_what_brings_it_back(short: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    directory = issue_node_credentials(short, "edge-1").parent
    now = [cert_of(directory).not_valid_after_utc.timestamp() + 1]
    api = FakeApi(short)
    credentials = keeper(directory, now)
    credentials.check(api)  # type: ignore[arg-type]
    credentials.check(api)  # type: ignore[arg-type]
    logged = capsys.readouterr().out
    assert api.requests == []  # an expired token cannot renew: the administrator must issue new credentials
    assert logged.count("this node's credentials expired at") == 1
    assert "edgeworkers cloud issue-node-credentials edge-1 --output-dir DIR" in logged
    assert "pods keep running" in logged


def test_a_refused_or_unsupported_renewal_is_reported_and_a_failed_one_retried(short: Settings,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    directory = issue_node_credentials(short, "edge-1").parent
    due = cert_of(directory).not_valid_after_utc.timestamp() - 1
    api = FakeApi(short)
    credentials = keeper(directory, [due])
    api.error = CloudUnavailable("down")
    credentials.check(api)  # type: ignore[arg-type]
    api.error = ApiError(401, "Unauthorized", "Unauthorized")
    credentials.check(api)  # type: ignore[arg-type]
    assert "the cloud refused to renew this node's credentials (401 Unauthorized)" in capsys.readouterr().out
    api.error = ApiError(404, "NotFound", "the server could not find the requested resource")
    credentials.check(api)  # type: ignore[arg-type]
    credentials.check(api)  # type: ignore[arg-type]
    assert len(api.requests) == 3  # not asked again of a server without the endpoint
    assert "the API server does not renew node credentials" in capsys.readouterr().out


def test_an_earlier_versions_certificate_and_inline_token_are_renewed_at_once(short: Settings) -> None:
    directory = issue_node_credentials(short, "edge-1").parent
    creds = ensure_credentials(short.cloud_data_dir)
    # An earlier version's files: a certificate from the cluster CA, the token inline in the kubeconfig.
    (directory / "node.crt").write_bytes(creds.cert.read_bytes())
    (directory / "node.key").write_bytes(creds.key.read_bytes())
    config = yaml.safe_load((directory / "kubeconfig").read_text())
    config["users"][0]["user"] = {"token": (directory / "token").read_text()}
    (directory / "kubeconfig").write_text(yaml.safe_dump(config))
    api = FakeApi(short)
    keeper(directory, [cert_of(directory).not_valid_before_utc.timestamp() + 60]).check(api)  # type: ignore[arg-type]
    assert len(api.requests) == 1
    cert_of(directory).verify_directly_issued_by(x509.load_pem_x509_certificate(creds.serving_ca_cert.read_bytes()))
    assert yaml.safe_load((directory / "kubeconfig").read_text())["users"][0]["user"] == {"tokenFile": "token"}
