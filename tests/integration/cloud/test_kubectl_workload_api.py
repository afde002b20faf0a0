"""The workload kinds as kubectl finds them: discovery, create, the scale subresource, a `kind: List` apply.

What the controllers then do with them is tested beside each controller; this is the API alone.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cloud


def test_api_resources_list_the_workload_kinds(cloud: Cloud) -> None:
    lines = cloud.kubectl("api-resources", "--no-headers").stdout.splitlines()
    names = {line.split()[0]: line.split() for line in lines}
    for name, short in (("deployments", "deploy"), ("replicasets", "rs"), ("daemonsets", "ds"),
                        ("replicationcontrollers", "rc"), ("services", "svc"), ("endpoints", "ep")):
        assert short in names[name], names.get(name)
    assert {"jobs", "controllerrevisions", "endpointslices"} <= set(names)


def test_create_scale_and_delete_a_deployment(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api-web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api-web"}}, "template": {
            "metadata": {"labels": {"app": "api-web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    try:
        deployment = json.loads(cloud.kubectl("get", "deploy", "api-web", "-o", "json").stdout)
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["selector"] == {"matchLabels": {"app": "api-web"}}
        assert deployment["metadata"]["generation"] == 1

        assert "scaled" in cloud.kubectl("scale", "deployment/api-web", "--replicas=5").stdout
        scale = json.loads(cloud.kubectl("get", "--raw",
                                         "/apis/apps/v1/namespaces/default/deployments/api-web/scale").stdout)
        assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 5} and scale["status"]["selector"] == "app=api-web"
        assert json.loads(cloud.kubectl("get", "deploy", "api-web", "-o", "json").stdout)["metadata"][
            "generation"] == 2

        refused = cloud.kubectl("scale", "deployment/api-web", "--replicas=-1", check=False)
        assert refused.returncode != 0
        assert "greater than or equal to 0" in refused.stderr or "invalid" in refused.stderr.lower()
    finally:
        cloud.kubectl("delete", "deployment", "api-web", "--wait=false")
    assert cloud.kubectl("get", "deploy", "api-web", check=False).returncode != 0


def test_apply_of_a_list_of_workload_kinds_validates(cloud: Cloud) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "api-list-job"},
         "spec": {"template": {"spec": {"restartPolicy": "Never",
                                        "containers": [{"name": "c", "image": "busybox"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api-list-svc"},
         "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}},
    ]}
    try:
        out = cloud.kubectl("apply", "-f", "-", input=json.dumps(manifest)).stdout
        assert "job.batch/api-list-job created" in out and "service/api-list-svc created" in out
        unknown = {**manifest, "items": [{**manifest["items"][0], "spec": {**manifest["items"][0]["spec"],
                                                                           "bogus": 1}}]}
        refused = cloud.kubectl("apply", "-f", "-", "--validate=strict", input=json.dumps(unknown), check=False)
        assert refused.returncode != 0 and "bogus" in refused.stderr
    finally:
        cloud.kubectl("delete", "job/api-list-job", "service/api-list-svc", "--ignore-not-found", "--wait=false")
