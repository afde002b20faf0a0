"""A small client of a Kubernetes API server (the embedded cloud, or a real one), configured from a kubeconfig.

Only this module talks HTTP to the cloud; its failures become ``CloudUnavailable`` (retry later) or
``ApiError`` (the server answered with a Kubernetes ``Status``).
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import requests
import yaml

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT_S = 10.0


class CloudUnavailable(Exception):
    """The API server could not be reached or failed (5xx): try again later."""


class ApiError(Exception):
    """The API server refused a request with a Kubernetes ``Status``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ClusterAccess:
    """Where the API server is and how to authenticate to it."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None  # PEM
    insecure: bool = False


def load_kubeconfig(text: str, context: str | None = None) -> ClusterAccess:
    """The server, CA and bearer token of the kubeconfig's current (or given) context; ValueError if malformed."""
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
    ca_data = None
    if cluster.get("certificate-authority-data"):
        ca_data = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"], "rb") as f:
            ca_data = f.read()
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"]) as f:
            token = f.read().strip()
    if not cluster.get("server"):
        raise ValueError(f"kubeconfig cluster {ctx.get('cluster')!r} has no server")
    return ClusterAccess(
        server=cluster["server"].rstrip("/"),
        token=token,
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )


def _named(entries: list[dict[str, Any]] | None, name: str | None, kind: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry.get(kind) or {}
    raise ValueError(f"kubeconfig has no {kind} named {name!r}")


class ApiClient:
    """JSON requests to the API server; one ``requests.Session`` with keep-alive."""

    def __init__(self, access: ClusterAccess, timeout_s: float = TIMEOUT_S) -> None:
        self._server = access.server
        self._timeout = timeout_s
        self._session = requests.Session()
        self._ca_file: str | None = None
        if access.token:
            self._session.headers["Authorization"] = f"Bearer {access.token}"
        self._session.headers["User-Agent"] = "edgeworkers-node"
        # Passed with each request: requests lets REQUESTS_CA_BUNDLE override a session's own `verify`.
        self._verify: bool | str = True
        if access.insecure:
            self._verify = False
        elif access.ca_data:
            fd, self._ca_file = tempfile.mkstemp(prefix="edgeworkers-ca-", suffix=".crt")
            with os.fdopen(fd, "wb") as f:
                f.write(access.ca_data)
            self._verify = self._ca_file

    def close(self) -> None:
        self._session.close()
        if self._ca_file:
            os.unlink(self._ca_file)
            self._ca_file = None

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path)

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
        try:
            response = self._session.request(
                method, self._server + path, timeout=self._timeout, verify=self._verify, **kwargs
            )
        except requests.RequestException as exc:
            raise CloudUnavailable(f"{method} {path}: {exc}") from exc
        if response.status_code >= 500:
            raise CloudUnavailable(f"{method} {path}: {response.status_code} {response.text[:200]}")
        if response.status_code >= 400:
            try:
                status = response.json()
            except ValueError:
                status = {}
            raise ApiError(
                response.status_code,
                status.get("reason", "") if isinstance(status, dict) else "",
                status.get("message", response.text) if isinstance(status, dict) else response.text,
            )
        return response.json()
