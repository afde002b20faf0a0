"""Node serving certificates from a CA of their own, naming their node alone; renewal through the API for a node's
own identity only; the registry's expiry, grace and revocation; x509 client certificates as identities."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import stat

import pytest
import pytest_asyncio
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.auth import RENEWAL_GRACE_S, NodeTokens, certificate_identity
from edgeworkers.cloud.certificates import PATH
from edgeworkers.cloud.tls import (
    client_certificate_kubeconfig_yaml,
    ensure_credentials,
    issue_node_credentials,
    revoke_node_credentials,
)
from tests.credentials import kubeconfig_token

PODS = "/api/v1/namespaces/default/pods"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def csr_body(node: str = "edge-1", key: ec.EllipticCurvePrivateKey | None = None, names: tuple[str, ...] = ()) -> dict:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return {"apiVersion": "edgeworkers.io/v1", "kind": "NodeCredentialRequest",
            "spec": {"request": base64.b64encode(pem).decode()}}


def test_a_node_certificate_comes_from_the_kubelet_serving_ca_and_names_its_node_alone(settings) -> None:
    creds = ensure_credentials(settings.cloud_data_dir)
    node_dir = issue_node_credentials(settings, "edge-1", address="10.0.0.7").parent
    cert = load(node_dir / "node.crt")
    cert.verify_directly_issued_by(load(creds.serving_ca_cert))
    with pytest.raises((InvalidSignature, ValueError)):  # not the CA the kubeconfigs trust for the API server
        cert.verify_directly_issued_by(load(creds.ca_cert))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["edge-1"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert cert.subject.rfc4514_string() == "CN=system:node:edge-1,O=system:nodes"
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364) < lifetime <= dt.timedelta(days=365)
    # A loopback address names every machine: never in a node's certificate.
    loopback = load(issue_node_credentials(settings, "edge-1", address="127.0.0.1").parent / "node.crt")
    names = loopback.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [] and names.get_values_for_type(x509.DNSName) == ["edge-1"]
    by_name = load(issue_node_credentials(settings, "edge-1", address="edge-1.example").parent / "node.crt")
    names = by_name.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["edge-1", "edge-1.example"]
    assert (node_dir / "ca.crt").read_bytes() == creds.ca_cert.read_bytes()  # the node trusts the cluster CA only
    assert stat.S_IMODE((settings.cloud_data_dir / "kubelet-serving-ca.key").stat().st_mode) == 0o600


@pytest.mark.asyncio
async def test_a_client_of_the_cluster_ca_refuses_a_server_showing_a_node_certificate(settings) -> None:
    creds = ensure_credentials(settings.cloud_data_dir)
    node_dir = issue_node_credentials(settings, "edge-1").parent
    impostor = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    impostor.load_cert_chain(node_dir / "node.crt", node_dir / "node.key")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=impostor)
    port = server.sockets[0].getsockname()[1]
    kubectl_like = ssl.create_default_context(cafile=str(creds.ca_cert))
    try:
        for name in ("127.0.0.1", "edge-1"):
            with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
                await asyncio.open_connection("127.0.0.1", port, ssl=kubectl_like, server_hostname=name)
    finally:
        server.close()
        await server.wait_closed()


def test_the_registry_expires_tokens_and_keeps_a_renewed_ones_predecessor_only_for_the_grace(settings) -> None:
    now = [1000.0]
    registry = NodeTokens(settings.cloud_data_dir, clock=lambda: now[0])
    first = registry.issue("edge-1", lifetime_s=100, serving_serial=0xA)
    assert registry.lookup(first) == "edge-1" and registry.serves("edge-1", 0xA)
    now[0] = 1050.0
    second = registry.renew("edge-1", lifetime_s=100, serving_serial=0xB)
    assert second and registry.lookup(second) == "edge-1" and registry.lookup(first) == "edge-1"
    assert registry.serves("edge-1", 0xA) and registry.serves("edge-1", 0xB)
    now[0] = 1099.0  # the first expires at 1100, before the grace would end
    assert registry.lookup(first) == "edge-1"
    now[0] = 1100.0
    assert registry.lookup(first) is None and not registry.serves("edge-1", 0xA)
    assert registry.lookup(second) == "edge-1" and registry.serves("edge-1", 0xB)
    now[0] = 1150.0
    assert registry.lookup(second) is None and not registry.serves("edge-1", 0xB)  # expired
    assert not registry.serves("edge-2", 0xB)


def test_a_renewal_cuts_the_previous_credentials_to_the_grace(settings) -> None:
    now = [0.0]
    registry = NodeTokens(settings.cloud_data_dir, clock=lambda: now[0])
    old = registry.issue("edge-1", lifetime_s=10_000, serving_serial=1)
    registry.renew("edge-1", lifetime_s=10_000, serving_serial=2)
    now[0] = RENEWAL_GRACE_S
    assert registry.lookup(old) is None and not registry.serves("edge-1", 1) and registry.serves("edge-1", 2)
    assert registry.revoke("edge-1") and not registry.serves("edge-1", 2)
    assert registry.renew("edge-1", lifetime_s=10, serving_serial=3) is None  # revoked: nothing to renew


def test_an_earlier_versions_registry_still_authenticates_its_tokens(settings) -> None:
    settings.cloud_data_dir.mkdir(parents=True)
    token = "abc.def"
    import hashlib

    (settings.cloud_data_dir / "node-tokens.json").write_text(
        f'{{"edge-1": "{hashlib.sha256(token.encode()).hexdigest()}"}}')
    registry = NodeTokens(settings.cloud_data_dir)
    assert registry.lookup(token) == "edge-1" and not registry.serves("edge-1", 1)
    assert registry.renew("edge-1", lifetime_s=10, serving_serial=5) and registry.serves("edge-1", 5)


def test_x509_identities_are_the_common_name_and_organizations_but_never_a_node() -> None:
    subject = ((("organizationName", "system:masters"),), (("organizationName", "ops"),), (("commonName", "alice"),))
    identity = certificate_identity({"subject": subject})
    assert identity is not None and identity.user == "alice"
    assert identity.groups == ("system:masters", "ops", "system:authenticated")
    assert certificate_identity({"subject": ((("commonName", "system:node:edge-1"),),)}) is None
    assert certificate_identity({"subject": ((("organizationName", "x"),),)}) is None
    assert certificate_identity(None) is None and certificate_identity({}) is None


def test_the_client_certificate_kubeconfig_holds_an_admin_certificate_from_the_cluster_ca(settings) -> None:
    config = yaml.safe_load(client_certificate_kubeconfig_yaml(settings))
    creds = ensure_credentials(settings.cloud_data_dir)
    user = config["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    cert.verify_directly_issued_by(load(creds.ca_cert))
    assert cert.subject.rfc4514_string() == "CN=edgeworkers:admin,O=system:masters"
    key = serialization.load_pem_private_key(base64.b64decode(user["client-key-data"]), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == creds.ca_cert.read_bytes()


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, "admin-token"))


@pytest.mark.asyncio
async def test_a_node_renews_its_own_credentials_through_the_api(client, settings) -> None:
    old = kubeconfig_token(issue_node_credentials(settings, "edge-1"))
    key = ec.generate_private_key(ec.SECP256R1())
    resp = await client.post(PATH, json=csr_body(key=key, names=("edge-2", "localhost")), headers=bearer(old))
    assert resp.status == 201, await resp.text()
    granted = (await resp.json())["status"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(granted["certificate"]))
    # For the caller's node, whatever the CSR asks: its name only, its key, from the kubelet-serving CA.
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["edge-1"]
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    cert.verify_directly_issued_by(load(settings.cloud_data_dir / "kubelet-serving-ca.crt"))
    assert granted["expirationTimestamp"].endswith("Z")
    registry = NodeTokens(settings.cloud_data_dir)
    assert registry.serves("edge-1", cert.serial_number)
    for token in (granted["token"], old):  # the old one for the grace only
        assert (await client.get(PODS, headers=bearer(token))).status == 200
    revoke_node_credentials(settings, "edge-1")
    assert (await client.post(PATH, json=csr_body(), headers=bearer(granted["token"]))).status == 401


@pytest.mark.asyncio
async def test_only_a_node_may_ask_and_only_with_a_valid_request(client, settings) -> None:
    assert (await client.post(PATH, json=csr_body())).status == 401
    admin = await client.post(PATH, json=csr_body(), headers=bearer("admin-token"))
    assert admin.status == 403
    assert (await admin.json())["message"].startswith(
        'nodecredentialrequests.edgeworkers.io is forbidden: User "edgeworkers:admin" cannot create resource')
    token = kubeconfig_token(issue_node_credentials(settings, "edge-1"))
    for body in ({}, {"spec": {"request": "not base64!"}}, {"spec": {"request": base64.b64encode(b"junk").decode()}}):
        resp = await client.post(PATH, json=body, headers=bearer(token))
        assert resp.status == 400 and (await resp.json())["reason"] == "BadRequest", body
