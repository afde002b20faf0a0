"""The `cloud` process across its own lifetime: its TLS identity, health checks for callers with a token, a restart."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import requests
import yaml

if TYPE_CHECKING:
    from conftest import Cloud


def ca_file(cloud: Cloud) -> str:
    return str(cloud.data_dir / "ca.crt")


def test_the_serving_certificate_verifies_against_the_kubeconfigs_ca(own_cloud: Cloud) -> None:
    url = f"https://127.0.0.1:{own_cloud.port}/healthz"
    admin = yaml.safe_load(own_cloud.kubeconfig.read_text())["users"][0]["user"]["token"]
    assert requests.get(url, verify=ca_file(own_cloud), timeout=5).status_code == 401  # nothing answers anonymously
    authorized = {"Authorization": f"Bearer {admin}"}
    assert requests.get(url, verify=ca_file(own_cloud), headers=authorized, timeout=5).text == "ok"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=5)  # the system's CAs do not know it


def test_objects_resource_versions_and_credentials_survive_a_restart(own_cloud: Cloud) -> None:
    own_cloud.kubectl("create", "configmap", "settings", "--from-literal=mode=edge")
    before = json.loads(own_cloud.kubectl("get", "configmap", "settings", "-o", "json").stdout)
    kubeconfig = own_cloud.kubeconfig.read_text()
    own_cloud.stop()
    own_cloud.start()
    after = json.loads(own_cloud.kubectl("get", "configmap", "settings", "-o", "json").stdout)
    assert after["data"] == {"mode": "edge"} and after["metadata"]["uid"] == before["metadata"]["uid"]
    own_cloud.kubectl("create", "configmap", "later", "--from-literal=a=b")
    later = json.loads(own_cloud.kubectl("get", "configmap", "later", "-o", "json").stdout)
    assert int(later["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert yaml.safe_load(kubeconfig) == yaml.safe_load(own_cloud.kubeconfig.read_text())


def test_a_watch_from_before_a_restart_is_told_its_version_expired(own_cloud: Cloud) -> None:
    own_cloud.kubectl("create", "configmap", "old", "--from-literal=a=b")
    rv = json.loads(own_cloud.kubectl("get", "configmap", "old", "-o", "json").stdout)["metadata"]["resourceVersion"]
    own_cloud.kubectl("create", "configmap", "newer", "--from-literal=a=b")  # an event the restart forgets
    own_cloud.stop()
    own_cloud.start()
    token = yaml.safe_load(own_cloud.kubeconfig.read_text())["users"][0]["user"]["token"]
    resp = requests.get(f"https://127.0.0.1:{own_cloud.port}/api/v1/namespaces/default/configmaps",
                        params={"watch": "true", "resourceVersion": rv}, verify=ca_file(own_cloud), timeout=5,
                        headers={"Authorization": f"Bearer {token}"})
    event = json.loads(resp.text.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
