"""``pods/{name}/log``: proxied to the node's kubelet-style endpoint, streamed back as text.

The node is the pod's ``spec.nodeName``; its address is the Node's InternalIP and its port the one it
reports in ``status.daemonEndpoints.kubeletEndpoint.Port``, as the API server finds a kubelet. The connection is
HTTPS: the node's certificate must be signed by the kubelet-serving CA for that node and be one of its live ones
(``certificates.NodeConnector``), and the cloud shows its kubelet client certificate (``kubelet-client.crt``),
without which the node answers 401.
"""
from __future__ import annotations

import ipaddress
import os
from urllib.parse import quote

import aiohttp
from aiohttp import web

from edgeworkers.cloud.store import Store
from edgeworkers.k8s import status

# Options passed on to the node unchanged (the container is part of the path).
FORWARDED = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes")


def container_name(pod: dict, requested: str | None) -> str:
    """The container a log request means: the one named, or the pod's only one."""
    spec = pod.get("spec") or {}
    names = [c["name"] for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]
    name = pod["metadata"]["name"]
    if requested:
        if requested not in names:
            raise status.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    app_names = [c["name"] for c in spec.get("containers") or []]
    if len(app_names) == 1:
        return app_names[0]
    raise status.bad_request(
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(app_names)}]")


def waiting_reason(pod: dict, container: str) -> str:
    """Why ``container`` has no logs yet, from the pod's status (kubelet's ContainerCreating by default)."""
    pod_status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in pod_status.get(key) or []:
            if cs.get("name") == container:
                return ((cs.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
    return "ContainerCreating"


def log_url(node: dict, pod: dict, container: str) -> str:
    node_status = node.get("status") or {}
    port = (((node_status.get("daemonEndpoints") or {}).get("kubeletEndpoint")) or {}).get("Port")
    addresses = node_status.get("addresses") or []
    address = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), None)
    if not port or not address:
        raise status.internal(f'node "{node["metadata"]["name"]}" reports no kubelet endpoint')
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    meta = pod["metadata"]
    path = "/".join(quote(p, safe="") for p in (meta["namespace"], meta["name"], container))
    return f"https://{host}:{port}/containerLogs/{path}"


async def pod_logs(request: web.Request, store: Store, session: aiohttp.ClientSession,
                   namespace: str, name: str) -> web.StreamResponse:
    pod = store.get("pods", namespace, name)
    container = container_name(pod, request.query.get("container"))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise status.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: {waiting_reason(pod, container)}')
    url = log_url(store.get("nodes", "", node_name), pod, container)
    params = {k: request.query[k] for k in FORWARDED if k in request.query}
    follow = request.query.get("follow", "").lower() in ("true", "1")
    timeout = aiohttp.ClientTimeout(total=None if follow else 60, sock_connect=5)
    try:
        # The node's certificate must be signed by the kubelet-serving CA and name this node (its subjectAltName).
        upstream = await session.get(url, params=params, timeout=timeout, server_hostname=node_name)
    except aiohttp.ClientConnectorError as exc:  # worded as the API server words an unreachable kubelet
        errno = exc.os_error.errno
        reason = os.strerror(errno).lower() if errno else str(exc.os_error)
        raise status.internal(f'Get "{url}": dial tcp {exc.host}:{exc.port}: connect: {reason}') from exc
    except aiohttp.ClientError as exc:
        raise status.internal(f'Get "{url}": {exc}') from exc
    async with upstream:
        if upstream.status != 200:
            message = (await upstream.text()).strip()
            if upstream.status == 400:
                raise status.bad_request(message)
            if upstream.status == 404:
                raise status.APIError({**status.bad_request(message).status, "reason": "NotFound", "code": 404})
            raise status.internal(message)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientError):  # either end went away: the stream is over
            pass
        return response

