"""The real `node serve` endpoint: HTTPS with the node's certificate from the kubelet-serving CA; 401 without the
cloud's client certificate; plain HTTP gets no answer."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests
import urllib3

from edgeworkers.config import Settings
from edgeworkers.kubeclient import credentials_dir
from tests.integration.cloud.conftest import cloud_client, node_request

if TYPE_CHECKING:
    from tests.integration.cloud.conftest import Cloud, EdgeNode


def test_the_node_endpoint_answers_401_to_anyone_but_the_cloud(cloud: Cloud, edge_node: EdgeNode) -> None:
    logs = "/containerLogs/default/web/app"
    for path in ("/healthz", logs):  # the node's certificate verifies against the kubelet-serving CA, by its name
        anonymous = node_request(cloud, edge_node.port, edge_node.name, path)
        assert (anonymous.status, anonymous.data) == (401, b"Unauthorized"), path
    node_dir = credentials_dir(Settings(cloud_data_dir=cloud.data_dir, node_name=edge_node.name))
    own_cert = (str(node_dir / "node.crt"), str(node_dir / "node.key"))  # a serving certificate is no client one
    try:
        assert node_request(cloud, edge_node.port, edge_node.name, logs, client=own_cert).status == 401
    except urllib3.exceptions.HTTPError:  # refused in the handshake (TLS 1.3 reports it as a reset)
        pass
    assert node_request(cloud, edge_node.port, edge_node.name, "/healthz", client=cloud_client(cloud)).data == b"ok"
    for path in ("/containerLogs/default/web/app", "/healthz"):  # plain HTTP: not even a refusal
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{edge_node.port}{path}", timeout=5)
