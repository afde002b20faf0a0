"""`kubectl delete --cascade=foreground|orphan|background` of a Deployment against the cloud's garbage collector.

No node runs here: a pod bound to none goes at once when deleted, and one whose template names a node that never
confirms (``nodeName: ghost``) stays Terminating until the test, playing its node, force-deletes it.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.polling import wait_for

if TYPE_CHECKING:
    from conftest import Cloud


def deployment(name: str, **pod_spec: object) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **pod_spec}}}})


def items(cloud: Cloud, kind: str, app: str) -> list[dict]:
    return json.loads(cloud.kubectl("get", kind, "-l", f"app={app}", "-o", "json").stdout)["items"]


def deployments(cloud: Cloud, name: str) -> list[dict]:
    return [d for d in json.loads(cloud.kubectl("get", "deploy", "-o", "json").stdout)["items"]
            if d["metadata"]["name"] == name]


def running(cloud: Cloud, app: str) -> None:
    cloud.kubectl("apply", "-f", "-", input=deployment(app))
    wait_for(lambda: len(items(cloud, "pods", app)) == 2 and len(items(cloud, "rs", app)) == 1, 30,
             f"{app}'s ReplicaSet and pods")


def terminating(objs: list[dict]) -> bool:
    return bool(objs) and all(o["metadata"].get("deletionTimestamp") for o in objs)


def confirm_pods(cloud: Cloud, app: str) -> None:
    """What the pods' node would do once their containers are stopped."""
    cloud.kubectl("delete", "pods", "-l", f"app={app}", "--force", "--grace-period=0")


def test_foreground_keeps_the_deployment_until_its_replica_set_and_pods_are_gone(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=deployment("fg", nodeName="ghost"))
    try:
        wait_for(lambda: len(items(cloud, "pods", "fg")) == 2, 30, "two pods")
        deleting = cloud.kubectl_popen("delete", "deployment", "fg", "--cascade=foreground")  # --wait: until gone
        try:
            wait_for(lambda: terminating(items(cloud, "pods", "fg")), 30, "the pods terminating")
            [owner] = deployments(cloud, "fg")
            assert owner["metadata"]["finalizers"] == ["foregroundDeletion"] and owner["metadata"]["deletionTimestamp"]
            [replica_set] = items(cloud, "rs", "fg")
            assert replica_set["metadata"]["finalizers"] == ["foregroundDeletion"]
            assert len(items(cloud, "pods", "fg")) == 2  # none replaced: the ReplicaSet is being deleted
            assert deleting.poll() is None  # kubectl waits for the Deployment

            confirm_pods(cloud, "fg")
            out, err = deleting.communicate(timeout=30)
            assert deleting.returncode == 0, err
            assert 'deployment.apps "fg" deleted' in out
        finally:
            if deleting.poll() is None:
                deleting.kill()
                deleting.communicate()
        assert deployments(cloud, "fg") == [] and items(cloud, "rs", "fg") == []
        assert items(cloud, "pods", "fg") == []
    finally:
        cloud.kubectl("delete", "deploy", "fg", "--ignore-not-found", "--wait=false")
        confirm_pods(cloud, "fg")


def test_orphan_leaves_the_replica_set_and_its_pods(cloud: Cloud) -> None:
    running(cloud, "orph")
    try:
        cloud.kubectl("delete", "deployment", "orph", "--cascade=orphan")
        assert deployments(cloud, "orph") == []
        [replica_set] = items(cloud, "rs", "orph")
        assert "ownerReferences" not in replica_set["metadata"]
        pods = items(cloud, "pods", "orph")
        assert len(pods) == 2 and not terminating(pods)
        assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods} == {replica_set["metadata"]["name"]}
    finally:
        cloud.kubectl("delete", "rs", "-l", "app=orph", "--ignore-not-found")


def test_background_removes_the_replica_set_and_its_pods(cloud: Cloud) -> None:
    running(cloud, "bg")
    cloud.kubectl("delete", "deployment", "bg")  # kubectl's default: --cascade=background
    assert deployments(cloud, "bg") == []
    wait_for(lambda: items(cloud, "rs", "bg") == [] and items(cloud, "pods", "bg") == [], 30, "all of it gone")


def test_a_foreground_deletion_resumes_after_a_restart(own_cloud: Cloud) -> None:
    cloud = own_cloud
    cloud.kubectl("apply", "-f", "-", input=deployment("again", nodeName="ghost"))
    wait_for(lambda: len(items(cloud, "pods", "again")) == 2, 30, "two pods")
    cloud.kubectl("delete", "deployment", "again", "--cascade=foreground", "--wait=false")
    wait_for(lambda: terminating(items(cloud, "pods", "again")), 30, "the pods terminating")
    cloud.stop()
    cloud.start()
    assert terminating(deployments(cloud, "again")) and terminating(items(cloud, "rs", "again"))
    confirm_pods(cloud, "again")
    wait_for(lambda: deployments(cloud, "again") == [] and items(cloud, "rs", "again") == [], 30,
             "the Deployment gone after the restart")
