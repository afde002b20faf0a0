"""The small Kubernetes client: kubeconfig credentials, query params, paged lists, watch streams and their end."""
from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from edgeworkers.config import Settings
from edgeworkers.kubeclient import (
    PLUGINS_UNSUPPORTED,
    ApiClient,
    ApiError,
    CloudUnavailable,
    ClusterAccess,
    WatchExpired,
    access_from_settings,
    load_kubeconfig,
)
from tests.polling import wait_for
from tests.unit.fakehttp import Handler, Server, end_stream, event, reply, servers, stream


def kubeconfig(cluster: dict, user: dict, current: str = "edge") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": cluster}, {"name": "other", "cluster": {"server": "https://x"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "edge", "context": {"cluster": "c", "user": "u"}},
                     {"name": "far", "context": {"cluster": "other"}}],
    })


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- kubeconfig ----------------------------------------------------------------------------------


def test_inline_ca_and_token() -> None:
    text = kubeconfig({"server": "https://127.0.0.1:6443/", "certificate-authority-data": b64(b"PEM")},
                      {"token": "s3cret"})
    assert load_kubeconfig(text) == ClusterAccess("https://127.0.0.1:6443", "s3cret", b"PEM")


def test_files_relative_to_the_kubeconfig_and_another_context(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"PEM")
    text = kubeconfig({"server": "https://h:1", "certificate-authority": "ca.crt"},
                      {"tokenFile": "token", "client-certificate": "/abs/c.crt", "client-key": "k.key"})
    assert load_kubeconfig(text, base_dir=tmp_path) == ClusterAccess(
        "https://h:1", ca_file=str(tmp_path / "ca.crt"), token_file=str(tmp_path / "token"),
        cert_file="/abs/c.crt", key_file=str(tmp_path / "k.key"))
    assert load_kubeconfig(text, context="far", base_dir=tmp_path) == ClusterAccess("https://x")


def test_inline_client_certificate() -> None:
    text = kubeconfig({"server": "https://h"},
                      {"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")})
    access = load_kubeconfig(text)
    assert (access.cert_data, access.key_data) == (b"CERT", b"KEY")
    assert "KEY" not in repr(access)


def test_secrets_stay_out_of_repr() -> None:
    assert "s3cret" not in repr(ClusterAccess("https://h", token="s3cret"))


@pytest.mark.parametrize("user", [
    {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}},
    {"auth-provider": {"name": "gcp"}},
])
def test_credential_plugins_are_refused_clearly(user: dict) -> None:
    with pytest.raises(ValueError, match=PLUGINS_UNSUPPORTED):
        load_kubeconfig(kubeconfig({"server": "https://h"}, user))


def test_a_missing_context_is_named() -> None:
    with pytest.raises(ValueError, match="no context named 'gone'"):
        load_kubeconfig(kubeconfig({"server": "https://h"}, {}, current="gone"))


@pytest.mark.parametrize(("text", "message"), [
    ("garbage: [", "kubeconfig is not YAML"),
    ("- a list", "kubeconfig is not a mapping"),
    (kubeconfig({}, {}), "kubeconfig cluster 'c' has no server"),
    (kubeconfig({"server": "https://h"}, {"client-key-data": "not base64!"}), "client-key-data is not base64"),
])
def test_a_malformed_kubeconfig_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_kubeconfig(text)


def test_access_from_settings_prefers_the_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(kubeconfig({"server": "https://far:6443"}, {"token": "t"}))
    assert access_from_settings(Settings(kubeconfig=path, cloud_data_dir=tmp_path)) == ClusterAccess(
        "https://far:6443", "t")


def test_access_from_settings_uses_the_nodes_own_credentials_never_the_admins(tmp_path: Path) -> None:
    config = Settings(cloud_data_dir=tmp_path, node_name="edge-1")
    (tmp_path / "ca.crt").write_bytes(b"PEM")
    (tmp_path / "token").write_text("admin\n")
    assert access_from_settings(config) is None  # the administrator's token is not for nodes
    node_dir = tmp_path / "nodes" / "edge-1"
    node_dir.mkdir(parents=True)
    (node_dir / "kubeconfig").write_text(kubeconfig({"server": "https://127.0.0.2:7443"}, {"token": "node-tok"}))
    assert access_from_settings(config) == ClusterAccess("https://127.0.0.2:7443", "node-tok")


# --- HTTP --------------------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    with servers() as start:
        yield start


def pod(name: str, rv: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def test_get_sends_query_params_and_the_token(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda req, path, query: reply(req, 200, {"kind": "Pod"}))
    api = ApiClient(ClusterAccess(server.url, token="tok"))
    assert api.get("/api/v1/pods/x", {"pretty": "false"}) == {"kind": "Pod"}
    assert server.requests == [("/api/v1/pods/x", {"pretty": ["false"]}, "Bearer tok")]
    api.close()


def test_the_token_file_is_read_again_after_its_ttl(serve: Callable[[Handler], Server], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda req, path, query: reply(req, 200, {}))
    (tmp_path / "token").write_text("one\n")
    api = ApiClient(ClusterAccess(server.url, token_file=str(tmp_path / "token")))
    api.get("/a")
    (tmp_path / "token").write_text("two\n")
    api.get("/a")
    monkeypatch.setattr("edgeworkers.kubeclient.TOKEN_FILE_TTL_S", 0.0)
    api.get("/a")
    assert [auth for _, _, auth in server.requests] == ["Bearer one", "Bearer one", "Bearer two"]
    api.close()


def test_inline_credentials_live_in_anonymous_memory_files_never_on_disk() -> None:
    api = ApiClient(ClusterAccess("https://h", ca_data=b"CA", cert_data=b"CERT", key_data=b"KEY"))
    cert, key = api._cert  # type: ignore[misc]
    files = [api._verify, cert, key]
    assert [Path(f).read_bytes() for f in files] == [b"CA", b"CERT", b"KEY"]  # type: ignore[arg-type]
    # /proc/self/fd/N of a memfd: no name in any directory, gone with the process (SIGKILL included).
    assert all(os.readlink(f).startswith("/memfd:edgeworkers-kubeclient-") for f in files)  # type: ignore[arg-type]
    fds = list(api._memfds)
    api.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_list_follows_continue_tokens_and_keeps_the_first_version(serve: Callable[[Handler], Server]) -> None:
    def pages(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        if "continue" not in query:
            reply(req, 200, {"kind": "PodList", "metadata": {"resourceVersion": "10", "continue": "c1"},
                             "items": [pod("a", "3"), pod("b", "4")]})
        else:
            reply(req, 200, {"kind": "PodList", "metadata": {"resourceVersion": "12"}, "items": [pod("c", "5")]})

    server = serve(pages)
    api = ApiClient(ClusterAccess(server.url))
    result = api.list("/api/v1/pods", {"fieldSelector": "spec.nodeName=n1"}, limit=2)
    assert [p["metadata"]["name"] for p in result["items"]] == ["a", "b", "c"]
    assert result["metadata"] == {"resourceVersion": "10"}
    assert [q for _, q, _ in server.requests] == [
        {"fieldSelector": ["spec.nodeName=n1"], "limit": ["2"]},
        {"fieldSelector": ["spec.nodeName=n1"], "limit": ["2"], "continue": ["c1"]},
    ]
    api.close()


@pytest.mark.parametrize(("code", "error"), [(404, ApiError), (410, WatchExpired), (503, CloudUnavailable)])
def test_error_answers(serve: Callable[[Handler], Server], code: int, error: type[Exception]) -> None:
    server = serve(lambda req, path, query: reply(req, code, {"kind": "Status", "code": code, "reason": "R",
                                                              "message": "m"}))
    api = ApiClient(ClusterAccess(server.url))
    with pytest.raises(error):
        api.get("/x")
    api.close()


def test_an_unreachable_server_is_cloud_unavailable(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda req, path, query: None)
    url = server.url
    server.close()
    api = ApiClient(ClusterAccess(url))
    with pytest.raises(CloudUnavailable):
        api.get("/x")
    with pytest.raises(CloudUnavailable):
        api.watch("/x")


def test_watch_yields_events_skipping_undecodable_lines(serve: Callable[[Handler], Server]) -> None:
    def watch(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        stream(req, [event("ADDED", pod("a", "5")), b"{not json\n", b'{"type": "ADDED", "object": 3}\n',
                     event("BOOKMARK", {"metadata": {"resourceVersion": "7"}})])
        end_stream(req)

    server = serve(watch)
    api = ApiClient(ClusterAccess(server.url))
    events = list(api.watch("/api/v1/pods", {"resourceVersion": "4"}, timeout_s=42))
    assert events == [("ADDED", pod("a", "5")), ("BOOKMARK", {"metadata": {"resourceVersion": "7"}})]
    assert server.requests[0][1] == {"resourceVersion": ["4"], "watch": ["true"], "allowWatchBookmarks": ["true"],
                                     "timeoutSeconds": ["42"]}
    api.close()


@pytest.mark.parametrize(("status", "error"), [
    ({"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}, WatchExpired),
    ({"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}, ApiError),
])
def test_an_error_event_ends_the_watch(serve: Callable[[Handler], Server], status: dict,
                                       error: type[Exception]) -> None:
    def watch(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        stream(req, [event("ADDED", pod("a", "5")), event("ERROR", status)])
        end_stream(req)

    api = ApiClient(ClusterAccess(serve(watch).url))
    events = api.watch("/api/v1/pods")
    assert next(events) == ("ADDED", pod("a", "5"))
    with pytest.raises(error, match=status["message"]):
        next(events)
    api.close()


def test_a_broken_stream_is_cloud_unavailable(serve: Callable[[Handler], Server]) -> None:
    def watch(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        stream(req, [event("ADDED", pod("a", "5"))])
        req.wfile.write(b"zz\r\n")  # not a chunk size
        req.close_connection = True

    api = ApiClient(ClusterAccess(serve(watch).url))
    events = api.watch("/api/v1/pods")
    assert next(events)[0] == "ADDED"
    with pytest.raises(CloudUnavailable):
        next(events)
    api.close()


def test_close_interrupts_a_blocked_watch_read(serve: Callable[[Handler], Server]) -> None:
    server: Server

    def watch(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        stream(req, [event("ADDED", pod("a", "5"))])
        server.release.wait(30)  # then silence: the client blocks in its read

    server = serve(watch)
    api = ApiClient(ClusterAccess(server.url))
    outcome: list[object] = []

    def consume() -> None:
        try:
            for item in api.watch("/api/v1/pods"):
                outcome.append(item)
        except CloudUnavailable as exc:
            outcome.append(exc)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    wait_for(lambda: outcome, what="the first event")
    api.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert isinstance(outcome[-1], CloudUnavailable)
    with pytest.raises(CloudUnavailable, match="closed"):
        api.get("/x")
