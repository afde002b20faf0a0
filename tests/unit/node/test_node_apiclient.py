"""Reading cluster access from a kubeconfig."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from edgeworkers.node.apiclient import ClusterAccess, load_kubeconfig


def kubeconfig(cluster: dict, user: dict, current: str = "edge") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": cluster}, {"name": "other", "cluster": {"server": "https://x"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "edge", "context": {"cluster": "c", "user": "u"}},
                     {"name": "far", "context": {"cluster": "other"}}],
    })


def test_inline_ca_and_token() -> None:
    text = kubeconfig(
        {"server": "https://127.0.0.1:6443/", "certificate-authority-data": base64.b64encode(b"PEM").decode()},
        {"token": "s3cret"},
    )
    assert load_kubeconfig(text) == ClusterAccess("https://127.0.0.1:6443", "s3cret", b"PEM")


def test_files_and_another_context(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"PEM")
    (tmp_path / "token").write_text("tok\n")
    text = kubeconfig({"server": "https://h:1", "certificate-authority": str(tmp_path / "ca.crt")},
                      {"tokenFile": str(tmp_path / "token")})
    assert load_kubeconfig(text) == ClusterAccess("https://h:1", "tok", b"PEM")
    assert load_kubeconfig(text, context="far") == ClusterAccess("https://x")


def test_a_missing_context_is_named() -> None:
    with pytest.raises(ValueError, match="no context named 'gone'"):
        load_kubeconfig(kubeconfig({"server": "https://h"}, {}, current="gone"))


@pytest.mark.parametrize(("text", "message"), [
    ("garbage: [", "kubeconfig is not YAML"),
    ("- a list", "kubeconfig is not a mapping"),
    (kubeconfig({}, {}), "kubeconfig cluster 'c' has no server"),
])
def test_a_malformed_kubeconfig_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_kubeconfig(text)
