"""A small client of a Kubernetes API server (the embedded cloud, or a real one), configured from a kubeconfig.

Deliberately small, on ``requests``: the official ``kubernetes`` package costs tens of MB of memory, which a small
edge cannot spare. Only this module talks HTTP to the cloud; its failures become ``CloudUnavailable`` (retry later),
``ApiError`` (the server answered with a Kubernetes ``Status``) or ``WatchExpired`` (a watch's resourceVersion is
too old: list again).
"""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import structlog
import yaml

if TYPE_CHECKING:
    from edgeworkers.config import Settings

log = structlog.get_logger(__name__)

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT_S = 10.0
LIST_PAGE_LIMIT = 500
# A watch's socket read may wait this much longer than the server's own timeoutSeconds before it gives up: a quiet
# watch is ended by the server (or kept alive by its bookmarks), a dead one by this.
WATCH_READ_MARGIN_S = 60.0
# How long a tokenFile's token is used before the file is read again (client-go's cached token source: rotated
# service-account tokens are picked up).
TOKEN_FILE_TTL_S = 60.0
PLUGINS_UNSUPPORTED = "exec credential plugins are not supported: use a token or a client certificate"


class CloudUnavailable(Exception):
    """The API server could not be reached or failed (5xx): try again later."""


class ApiError(Exception):
    """The API server refused a request with a Kubernetes ``Status``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class WatchExpired(ApiError):
    """410: the resourceVersion a watch (or a list's continue token) started from is gone; list again."""


@dataclass(frozen=True)
class ClusterAccess:
    """Where the API server is and how to authenticate to it (secrets are kept out of ``repr``)."""

    server: str
    token: str | None = field(default=None, repr=False)
    ca_data: bytes | None = None  # PEM, inline ...
    ca_file: str | None = None  # ... or a path (used as it is: no copy in a temporary file)
    insecure: bool = False
    token_file: str | None = None
    cert_file: str | None = None  # client certificate (PEM), a path ...
    key_file: str | None = None
    cert_data: bytes | None = None  # ... or inline
    key_data: bytes | None = field(default=None, repr=False)


def load_kubeconfig(text: str, context: str | None = None, base_dir: Path | None = None) -> ClusterAccess:
    """The server, CA and credentials of the kubeconfig's current (or given) context; ValueError if malformed or
    if it needs a credential plugin. Relative file paths are relative to ``base_dir`` (the kubeconfig's
    directory), as kubectl resolves them."""
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"kubeconfig is not YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError("kubeconfig is not a mapping")  # noqa: TRY004 - malformed input, not a caller bug
    name = context or config.get("current-context")
    ctx = _named(config.get("contexts"), name, "context")
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster")
    user = _named(config.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        raise ValueError(PLUGINS_UNSUPPORTED)
    if not cluster.get("server"):
        raise ValueError(f"kubeconfig cluster {ctx.get('cluster')!r} has no server")

    def path(value: str | None) -> str | None:
        return None if not value else str((base_dir or Path.cwd()) / Path(value).expanduser())

    ca_data = _inline(cluster, "certificate-authority-data")
    return ClusterAccess(
        server=cluster["server"].rstrip("/"),
        token=user.get("token") or None,
        ca_data=ca_data,
        ca_file=None if ca_data is not None else path(cluster.get("certificate-authority")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token_file=None if user.get("token") else path(user.get("tokenFile")),
        cert_file=path(user.get("client-certificate")),
        key_file=path(user.get("client-key")),
        cert_data=_inline(user, "client-certificate-data"),
        key_data=_inline(user, "client-key-data"),
    )


def _inline(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"kubeconfig {key} is not base64") from exc


def _named(entries: list[dict[str, Any]] | None, name: str | None, kind: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry.get(kind) or {}
    raise ValueError(f"kubeconfig has no {kind} named {name!r}")


def node_kubeconfig_path(settings: Settings) -> Path:
    """Where ``edgeworkers cloud issue-node-credentials <node>`` writes the node's kubeconfig by default."""
    return settings.cloud_data_dir / "nodes" / settings.node_name / "kubeconfig"


def credentials_dir(settings: Settings) -> Path:
    """The directory of the node's kubeconfig: its endpoint's ``node.crt``, ``node.key`` and ``ca.crt`` are beside it."""
    return settings.kubeconfig.parent if settings.kubeconfig is not None else node_kubeconfig_path(settings).parent


def access_from_settings(settings: Settings) -> ClusterAccess | None:
    """The cloud this node talks to: ``EDGEWORKERS_KUBECONFIG`` when set (ValueError/OSError when it is unusable),
    else the node's own credentials for the embedded cloud (``node_kubeconfig_path``: the identity
    ``system:node:<name>``, never the administrator's), None until they are issued."""
    if settings.kubeconfig is not None:
        return load_kubeconfig(settings.kubeconfig.read_text(), base_dir=settings.kubeconfig.parent)
    path = node_kubeconfig_path(settings)
    try:
        return load_kubeconfig(path.read_text(), base_dir=path.parent)
    except FileNotFoundError:
        return None


class ApiClient:
    """JSON requests to the API server over one keep-alive ``requests.Session``; safe to share between threads.

    ``close()`` also ends the watches in progress (their blocked reads included), so a process stops promptly.
    """

    def __init__(self, access: ClusterAccess, timeout_s: float = TIMEOUT_S) -> None:
        self._server = access.server
        self._timeout = timeout_s
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "edgeworkers-node"
        self._token = access.token
        self._token_file = access.token_file
        self._token_read_at = -TOKEN_FILE_TTL_S
        self._memfds: list[int] = []
        self._streams: set[requests.Response] = set()
        self._lock = threading.Lock()
        self._closed = False
        # Passed with each request: requests lets REQUESTS_CA_BUNDLE override a session's own `verify`.
        self._verify: bool | str = True
        if access.insecure:
            self._verify = False
        elif access.ca_file:
            self._verify = access.ca_file
        elif access.ca_data:
            self._verify = self._in_memory("ca", access.ca_data)
        cert = access.cert_file or (self._in_memory("cert", access.cert_data) if access.cert_data else None)
        key = access.key_file or (self._in_memory("key", access.key_data) if access.key_data else None)
        self._cert: tuple[str, str] | str | None = (cert, key) if cert and key else cert

    def _in_memory(self, what: str, data: bytes) -> str:
        """A path to ``data`` for requests, which takes certificates and keys as paths: an anonymous in-memory file
        (``memfd``) of this process, never on a disk, gone with the process however it ends (SIGKILL included);
        ``close`` frees it sooner."""
        fd = os.memfd_create(f"edgeworkers-kubeclient-{what}", os.MFD_CLOEXEC)
        self._memfds.append(fd)
        os.write(fd, data)
        return f"/proc/self/fd/{fd}"

    def use_token_file(self, path: str) -> None:
        """Take the token from ``path`` from the next request on (the node's token was just renewed or reissued)."""
        self._token_file = path
        self._token_read_at = -TOKEN_FILE_TTL_S

    def close(self) -> None:
        """End open watches, close the connections, free the in-memory files; later requests fail."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for response in streams:
            _abort(response)
        self._session.close()
        for fd in self._memfds:
            with suppress(OSError):
                os.close(fd)
        self._memfds.clear()

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._request("GET", path, params=params)

    def list(self, path: str, params: dict[str, str] | None = None, limit: int = LIST_PAGE_LIMIT) -> dict[str, Any]:
        """Every item of a collection, fetched ``limit`` at a time with continue tokens, as one List whose
        ``metadata.resourceVersion`` is the first page's (the version to watch from)."""
        query = {**(params or {}), "limit": str(limit)}
        first = self.get(path, query)
        items = first.get("items") or []
        token = (first.get("metadata") or {}).get("continue")
        while token:
            page = self.get(path, {**query, "continue": token})
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
        metadata = {k: v for k, v in (first.get("metadata") or {}).items() if k != "continue"}
        return {**first, "metadata": metadata, "items": items}

    def watch(
        self, path: str, params: dict[str, str] | None = None, timeout_s: int = 300
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Open a watch (with bookmarks, ending after ``timeout_s`` server-side) and return its events as
        ``(type, object)``. Opening raises as any request does; reading raises ``WatchExpired`` on a 410 ERROR
        event, ``ApiError`` on another, ``CloudUnavailable`` when the connection breaks. Undecodable lines are
        logged (by length: they may hold secrets) and skipped."""
        query = {**(params or {}), "watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_s)}
        response = self._send("GET", path, params=query, stream=True,
                              timeout=(self._timeout, timeout_s + WATCH_READ_MARGIN_S))
        with self._lock:
            if not self._closed:  # else closed while this watch was opening: it must not block a stopping process
                self._streams.add(response)
                return self._events(path, response)
        response.close()
        raise CloudUnavailable(f"watch {path}: the client is closed")

    def _events(self, path: str, response: requests.Response) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                event = _decode_event(line)
                if event is None:
                    log.warning("undecodable watch event dropped", path=path, length=len(line))
                    continue
                kind, obj = event
                if kind == "ERROR":
                    raise _status_error(_code(obj), obj, "watch ERROR event")
                yield kind, obj
        except (requests.RequestException, OSError) as exc:
            raise CloudUnavailable(f"watch {path}: {exc}") from exc
        finally:
            with self._lock:
                self._streams.discard(response)
            response.close()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, json=body)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", path, json=body)

    def patch(self, path: str, body: dict[str, Any], content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self._request("PATCH", path, data=json.dumps(body), headers={"Content-Type": content_type})

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """DELETE with ``DeleteOptions`` (e.g. ``{"gracePeriodSeconds": 0}``, as kubelet confirms a pod's end)."""
        return self._request("DELETE", path, json=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, timeout=self._timeout, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise CloudUnavailable(f"{method} {path}: the answer is not JSON") from exc

    def _send(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """The response of a request that succeeded (2xx); else raises, having closed it."""
        if self._closed:
            raise CloudUnavailable(f"{method} {path}: the client is closed")
        headers = {**(headers or {}), **self._auth()}
        try:
            response = self._session.request(
                method, self._server + path, headers=headers, verify=self._verify, cert=self._cert, **kwargs
            )
        except requests.RequestException as exc:
            raise CloudUnavailable(f"{method} {path}: {exc}") from exc
        if response.status_code < 400:
            return response
        try:
            text = response.text
        except requests.RequestException as exc:
            raise CloudUnavailable(f"{method} {path}: {response.status_code}, then {exc}") from exc
        finally:
            response.close()
        if response.status_code >= 500:
            raise CloudUnavailable(f"{method} {path}: {response.status_code} {text[:200]}")
        try:
            status = json.loads(text)
        except ValueError:
            status = None
        raise _status_error(response.status_code, status if isinstance(status, dict) else {"message": text}, "")

    def _auth(self) -> dict[str, str]:
        if self._token_file and time.monotonic() - self._token_read_at >= TOKEN_FILE_TTL_S:
            try:
                self._token = Path(self._token_file).read_text().strip()
                self._token_read_at = time.monotonic()
            except OSError as exc:  # keep the last token: the file may be mid-rotation
                log.warning("token file unreadable", path=self._token_file, error=str(exc))
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}


def _decode_event(line: bytes) -> tuple[str, dict[str, Any]] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event.get("object"), dict):
        return None
    return event["type"], event["object"]


def _code(status: dict[str, Any]) -> int:
    try:
        return int(status.get("code") or 500)
    except (TypeError, ValueError):
        return 500


def _status_error(code: int, status: dict[str, Any], default: str) -> Exception:
    reason, message = str(status.get("reason") or ""), str(status.get("message") or default)
    if code == 410:
        return WatchExpired(code, reason, message)
    if code >= 500:
        return CloudUnavailable(f"{code} {reason}: {message}")
    return ApiError(code, reason, message)


def _abort(response: requests.Response) -> None:
    """Unblock a thread reading ``response`` (closing alone does not wake a blocked read: shutting down does)."""
    sock = getattr(response.raw.connection, "sock", None) if response.raw is not None else None
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
