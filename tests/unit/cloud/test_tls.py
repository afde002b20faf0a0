import base64
import ssl
import stat

import yaml
from cryptography import x509

from edgeworkers.cloud.tls import ensure_credentials, kubeconfig_yaml, ssl_context


def test_credentials_are_made_once_and_reused(tmp_path):
    first = ensure_credentials(tmp_path)
    second = ensure_credentials(tmp_path)
    assert first == second and len(first.token) >= 32
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600


def test_the_serving_certificate_is_signed_by_the_ca_for_loopback(tmp_path):
    creds = ensure_credentials(tmp_path)
    ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(creds.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert isinstance(ssl_context(creds), ssl.SSLContext)


def test_kubeconfig_names_the_server_ca_and_token(settings):
    config = yaml.safe_load(kubeconfig_yaml(settings))
    creds = ensure_credentials(settings.cloud_data_dir)
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://127.0.0.1:{settings.cloud_port}"
    assert base64.b64decode(cluster["certificate-authority-data"]) == creds.ca_cert.read_bytes()
    assert config["users"][0]["user"] == {"token": creds.token}
    assert config["current-context"] == "edgeworkers"


def test_concurrent_first_starts_agree_on_one_ca(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from edgeworkers.cloud.tls import ensure_credentials

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ensure_credentials(tmp_path), range(4)))
    cas = {r.ca_cert.read_bytes() for r in results}
    assert len(cas) == 1
    assert len({r.token for r in results}) == 1


def serial(path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_the_clouds_own_certificates_are_renewed_past_80_percent_and_loaded_in_place(tmp_path, monkeypatch):
    from edgeworkers.cloud import tls

    own = tls.OwnCertificates(tmp_path, lifetime_s=3600.0)
    first = own.creds
    server, client = serial(first.cert), serial(first.client_cert)
    ca = first.ca_cert.read_bytes()
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    monkeypatch.setattr(tls, "_now", lambda: start + (end - start) * 0.79)
    own.renew()  # not yet due: kept
    assert (serial(first.cert), serial(first.client_cert)) == (server, client)
    monkeypatch.setattr(tls, "_now", lambda: start + (end - start) * 0.81)
    own.renew()
    assert serial(first.cert) != server
    assert serial(first.client_cert) != client and first.ca_cert.read_bytes() == ca
    assert isinstance(own.server, ssl.SSLContext) and isinstance(own.to_nodes, ssl.SSLContext)


def test_an_earlier_versions_ten_year_certificates_are_issued_again_within_the_lifetime(tmp_path):
    import datetime as dt

    ensure_credentials(tmp_path, lifetime_s=3650 * 86400.0)
    creds = ensure_credentials(tmp_path, lifetime_s=365 * 86400.0)
    for path in (creds.cert, creds.client_cert):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=366)
