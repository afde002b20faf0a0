"""The real `node serve` endpoint: HTTPS with the node's certificate from the cloud's CA; 401 without the cloud's
client certificate; plain HTTP gets no answer."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

from edgeworkers.config import Settings
from edgeworkers.kubeclient import credentials_dir

if TYPE_CHECKING:
    from tests.integration.cloud.conftest import Cloud, EdgeNode


def test_the_node_endpoint_answers_401_to_anyone_but_the_cloud(cloud: Cloud, edge_node: EdgeNode) -> None:
    base = f"https://127.0.0.1:{edge_node.port}"
    ca = str(cloud.data_dir / "ca.crt")
    logs = f"{base}/containerLogs/default/web/app"
    for url in (f"{base}/healthz", logs):
        anonymous = requests.get(url, verify=ca, timeout=5)  # the node's certificate verifies against the cloud's CA
        assert (anonymous.status_code, anonymous.text) == (401, "Unauthorized"), url
    node_dir = credentials_dir(Settings(cloud_data_dir=cloud.data_dir, node_name=edge_node.name))
    own_cert = (str(node_dir / "node.crt"), str(node_dir / "node.key"))  # a serving certificate is no client one
    try:
        assert requests.get(logs, verify=ca, cert=own_cert, timeout=5).status_code == 401
    except requests.exceptions.ConnectionError:  # refused in the handshake (TLS 1.3 reports it as a reset)
        pass
    cloud_client = (str(cloud.data_dir / "kubelet-client.crt"), str(cloud.data_dir / "kubelet-client.key"))
    assert requests.get(f"{base}/healthz", verify=ca, cert=cloud_client, timeout=5).text == "ok"
    for path in ("/containerLogs/default/web/app", "/healthz"):  # plain HTTP: not even a refusal
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{edge_node.port}{path}", timeout=5)
