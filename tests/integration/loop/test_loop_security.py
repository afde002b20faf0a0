"""The security context, DNS and hosts through the whole loop (kubectl -> cloud -> node -> real Docker), modelled on
Kubernetes' node conformance tests (test/e2e/common/node/security_context.go, pods.go, sysctl.go, and
test/e2e/network/dns.go, kubelet_etc_hosts.go): busybox pods print what they see and the test reads their logs."""
from __future__ import annotations

import json
import re

from edgeworkers.pods.dns import parse_resolv_conf
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.integration.volumes.test_volumes_kubectl import logs, waiting_message
from tests.polling import wait_for

# Each script sends stderr to stdout: the log's two streams may interleave in any order.
DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}  # fmt: skip


def test_users_groups_fs_group_read_only_root_no_new_privs_and_seccomp(cluster: Cluster) -> None:
    ids = busybox_pod("ids", "id; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; touch /rootfile 2>&1; "
                             "stat -c 'data %g %a' /data; touch /data/f && stat -c 'file %g' /data/f; "
                             "stat -L -c 'info %g %a' /info/labels; echo done; sleep 3600", node=cluster.node)
    ids["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                      "supplementalGroups": [4000], "seccompProfile": {"type": "RuntimeDefault"}}
    app = ids["spec"]["containers"][0]
    app["securityContext"] = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    app["volumeMounts"] = [{"name": "data", "mountPath": "/data"}, {"name": "info", "mountPath": "/info"}]
    ids["spec"]["volumes"] = [
        {"name": "data", "emptyDir": {}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
    ]
    # A Localhost profile from the node's profile directory (<data dir>/seccomp) denying mkdir.
    profiles = cluster.config.data_dir / "seccomp"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "deny-mkdir.json").write_text(json.dumps(DENY_MKDIR))
    local = busybox_pod("local-seccomp", "mkdir /tmp/x 2>&1; grep -E '^Seccomp:' /proc/self/status; echo done; sleep 3600",
                        node=cluster.node)
    local["spec"]["containers"][0]["securityContext"] = {
        "seccompProfile": {"type": "Localhost", "localhostProfile": "deny-mkdir.json"}}
    cluster.apply(ids, local)

    seen = logs(cluster, "ids", "done", timeout_s=90)
    assert "uid=1000 gid=3000 groups=2000,3000,4000\n" in seen, seen
    assert "NoNewPrivs:\t1\nSeccomp:\t2\n" in seen, seen
    assert "touch: /rootfile: Read-only file system\n" in seen, seen
    assert "data 2000 2777\nfile 2000\n" in seen, seen  # the emptyDir is fsGroup's, setgid: new files are too
    assert "info 2000 644\n" in seen, seen
    seen = logs(cluster, "local-seccomp", "done")
    assert "mkdir: can't create directory '/tmp/x': Operation not permitted\nSeccomp:\t2\n" in seen, seen


def test_run_as_non_root_is_refused_with_kubelets_reason(cluster: Cluster) -> None:
    root_image = busybox_pod("root-image", node=cluster.node)
    root_image["spec"]["securityContext"] = {"runAsNonRoot": True}
    root_user = busybox_pod("root-user", node=cluster.node)
    root_user["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 0}
    non_root = busybox_pod("non-root", "id -u; echo done; sleep 3600", node=cluster.node)
    non_root["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1234}
    cluster.apply(root_image, root_user, non_root)

    for name, message in (("root-image", "container has runAsNonRoot and image will run as root"),
                          ("root-user", "container's runAsUser breaks non-root policy")):
        pod = cluster.wait_pod(name, lambda p: "CreateContainerConfigError" in waiting_message(p), 60,
                               f"{name} refused")
        uid = pod["metadata"]["uid"]
        assert waiting_message(pod) == (f'CreateContainerConfigError: {message} (pod: "{name}_default({uid})", '
                                        "container: app)")
        assert set(cluster.running_ids(name)) <= {"POD"}  # the app never ran
    assert "1234\ndone" in logs(cluster, "non-root", "done")


def test_sysctls_safe_applied_unsafe_and_unconfined_refused(cluster: Cluster) -> None:
    safe = busybox_pod("safe-sysctls", "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range; "
                                       "echo done; sleep 3600", node=cluster.node)
    safe["spec"]["securityContext"] = {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                                   {"name": "net.ipv4.ip_local_port_range", "value": "30000 40000"}]}
    unsafe = busybox_pod("unsafe-sysctl", node=cluster.node)
    unsafe["spec"]["securityContext"] = {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}
    unconfined = busybox_pod("unconfined", node=cluster.node)
    unconfined["spec"]["securityContext"] = {"seccompProfile": {"type": "Unconfined"}}
    cluster.apply(safe, unsafe, unconfined)

    assert re.search(r"^1\n30000\s+40000\ndone", logs(cluster, "safe-sysctls", "done"), re.M)
    for name, reason, message in (
        ("unsafe-sysctl", "SysctlForbidden", 'forbidden sysctl: "net.core.somaxconn" not allowlisted'),
        ("unconfined", "Forbidden", 'container "app": seccomp profile Unconfined is not allowed '
                                    "(EDGEWORKERS_ADMISSION_ALLOW_UNCONFINED_SECCOMP)"),
    ):
        pod = cluster.wait_pod(name, lambda p: (p.get("status") or {}).get("phase") == "Failed", 60, f"{name} refused")
        assert pod["status"]["reason"] == reason and message in pod["status"]["message"], pod["status"]
        assert cluster.containers(name) == []


def test_share_process_namespace(cluster: Cluster) -> None:
    pod = busybox_pod("shared-pid", "sleep 1234", node=cluster.node, shareProcessNamespace=True)
    pod["spec"]["containers"].append({"name": "peer", "image": "busybox", "imagePullPolicy": "Never", "command": [
        "sh", "-c", "until ps | grep -q '[s]leep 1234'; do sleep 0.2; done; echo saw-app; sleep 3600"]})
    cluster.apply(pod)
    wait_for(lambda: "saw-app" in cluster.kubectl("logs", "shared-pid", "-c", "peer", check=False).stdout, 60,
             "the peer container seeing the app's process")


def test_resolv_conf_and_hosts_hold_what_the_spec_asked(cluster: Cluster) -> None:
    show = "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname; echo done; sleep 3600"
    custom = busybox_pod("dns-none", show, node=cluster.node, dnsPolicy="None", hostname="db", subdomain="backend",
                         dnsConfig={"nameservers": ["192.0.2.53"], "searches": ["ns1.svc.example", "example"],
                                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
                         hostAliases=[{"ip": "192.0.2.10", "hostnames": ["foo.local", "bar.local"]}])
    default = busybox_pod("dns-default", show, node=cluster.node)
    cluster.apply(custom, default)

    seen = logs(cluster, "dns-none", "done")
    ip = cluster.wait_running("dns-none")["dns-none"]["status"]["podIP"]
    resolv, hosts, hostname = seen.split("---\n")[:3]
    assert resolv == "nameserver 192.0.2.53\nsearch ns1.svc.example example\noptions ndots:2 edns0\n"
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), hosts
    assert hosts.endswith(f"{ip}\tdb.backend.default.svc.cluster.local\tdb\n\n# Entries added by HostAliases.\n"
                          "192.0.2.10\tfoo.local\tbar.local\n"), hosts
    assert hostname == "db\ndone\n"

    # ClusterFirst without a cluster DNS server: the node's resolv.conf, and kubelet's warning.
    resolv = logs(cluster, "dns-default", "done").split("---\n")[0]
    node = parse_resolv_conf(open("/etc/resolv.conf").read())  # noqa: PTH123 - the node's own file
    assert resolv == node.render()
    wait_for(lambda: "MissingClusterDNS" in cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=dns-default", "-o", "json").stdout, 30,
        "the MissingClusterDNS event")
