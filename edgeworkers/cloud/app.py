"""The cloud API's aiohttp application: discovery documents, the REST routes, middlewares, lifecycle."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import gc

import aiohttp
import orjson
import structlog
from aiohttp import web

from edgeworkers.cloud import certificates, discovery, kinds, openapi
from edgeworkers.cloud.auth import NodeTokens, authenticate, token_auth
from edgeworkers.cloud.binder import Binder
from edgeworkers.cloud.certificates import NodeConnector, NodeCredentialRequests
from edgeworkers.cloud.controller import TokenBucket
from edgeworkers.cloud.errors import route_not_found, status_errors
from edgeworkers.cloud.expiry import expire_events
from edgeworkers.cloud.handlers import Api
from edgeworkers.cloud.metrics_api import MetricsApi
from edgeworkers.cloud.nodelifecycle import NodeLifecycle
from edgeworkers.cloud.resources import API_VERSIONS, served_at
from edgeworkers.cloud.reviews import Reviews
from edgeworkers.cloud.serviceaccounts import ServiceAccounts
from edgeworkers.cloud.store import Clock, Store, utcnow
from edgeworkers.cloud.tls import OwnCertificates, ensure_credentials
from edgeworkers.cloud.watch import Hub
from edgeworkers.cloud.wire import MAX_BODY, json_response
from edgeworkers.config import Settings

log = structlog.get_logger(__name__)

API_KEY = web.AppKey("api", Api)
BINDER_KEY = web.AppKey("binder", Binder)
NODE_LIFECYCLE_KEY = web.AppKey("node_lifecycle", NodeLifecycle)
CONTROLLERS_KEY = web.AppKey("controllers", list)
_TASKS_KEY = web.AppKey("tasks", list)
SETTINGS_KEY = web.AppKey("settings", Settings)
SLASH = "{slash:/?}"  # kube-apiserver answers its documents with or without a trailing slash (kr8s asks `/version/`)
OWN_TLS_KEY = web.AppKey("own_tls", OwnCertificates)
_NODE_REGISTRY_KEY = web.AppKey("node_registry", NodeTokens)


def create_app(settings: Settings, token: str, *, clock: Clock = utcnow,
               bookmark_interval: float = 30.0) -> web.Application:
    """The whole API on one store (``cloud_data_dir/objects.db``); requests need the administrator's ``token`` or a
    node's token (``cloud_data_dir/node-tokens.json``)."""
    nodes = NodeTokens(settings.cloud_data_dir)
    own = OwnCertificates(settings.cloud_data_dir, settings.credential_lifetime_s)
    app = web.Application(middlewares=[status_errors, token_auth(token, nodes)], client_max_size=MAX_BODY)
    store = Store(settings.cloud_data_dir / "objects.db", clock)
    hub = Hub(store)
    api = Api(store, hub, clock, bookmark_interval=bookmark_interval,
              allocators={name: make(store, settings) for name, make in kinds.ALLOCATORS.items()})
    service_accounts = ServiceAccounts(store, hub, api.terminating)
    api.seed()
    service_accounts.sync()
    store.flush()  # served from here on: what the seed wrote is committed (a disk that fails now stops the start)
    app[API_KEY] = api
    app[BINDER_KEY] = Binder(store, hub, clock)
    limiter = TokenBucket(settings.controller_api_qps, settings.controller_api_burst, clock)  # one for all of them
    app[CONTROLLERS_KEY] = [make(store, hub, clock, settings, limiter) for make in kinds.CONTROLLERS]
    app[NODE_LIFECYCLE_KEY] = NodeLifecycle(store, hub, clock, settings.node_monitor_grace_period_s,
                                            settings.node_monitor_period_s)
    app[_TASKS_KEY] = []
    app[SETTINGS_KEY] = settings
    app[OWN_TLS_KEY] = own
    app[_NODE_REGISTRY_KEY] = nodes
    server_address = f"{settings.cloud_host}:{settings.cloud_port}"

    def resources_of(api_version: str):
        resources = served_at(api_version)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await api.dispatch(request, resources)
        return handler

    metrics_api = MetricsApi(store)
    reviews = Reviews(lambda bearer: authenticate(token, nodes, f"Bearer {bearer}"), store, clock)

    def document(build):
        async def handler(_request: web.Request) -> web.Response:
            return json_response(build())
        return handler

    def discovery_root(core: bool):
        """`/api` (``core``) or `/apis`: the aggregated document when the Accept header asks for it first."""
        async def handler(request: web.Request) -> web.Response:
            version = discovery.aggregated_version(request.headers.get("Accept", ""))
            if version is None:
                response = json_response(discovery.api_versions(server_address) if core else
                                         discovery.api_group_list())
            else:
                response = web.Response(body=orjson.dumps(discovery.aggregated(core, version)),
                                        headers={"Content-Type": discovery.AGGREGATED.format(version=version)})
            response.headers["Vary"] = "Accept"
            return response
        return handler

    async def api_group(request: web.Request) -> web.Response:
        group = discovery.api_group(request.match_info["group"])
        if group is None:
            raise route_not_found()
        return json_response(group)

    async def openapi_doc(request: web.Request) -> web.Response:
        doc = openapi.openapi_v3_doc(request.match_info["gv"])
        if doc is None:
            raise route_not_found()
        return json_response(doc)

    async def openapi_v2(request: web.Request) -> web.Response:
        """JSON, or gnostic's protobuf when asked (kubectl asks for it to validate a `kind: List`)."""
        if "protobuf" in request.headers.get("Accept", ""):
            return web.Response(body=openapi.openapi_v2_protobuf(), content_type=openapi.V2_PROTOBUF)
        return web.Response(body=openapi.openapi_v2_json(), content_type="application/json")

    async def healthy(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    router = app.router
    for path in ("/healthz", "/livez", "/readyz"):
        router.add_get(path, healthy)
    router.add_get("/version" + SLASH, document(discovery.version))
    router.add_get("/api" + SLASH, discovery_root(core=True))
    router.add_get("/apis" + SLASH, discovery_root(core=False))
    router.add_get("/apis/{group}" + SLASH, api_group)
    for served in discovery.SERVED:
        router.add_get(f"/{served.path}{SLASH}", document(functools.partial(discovery.resource_list, served.path)))
    router.add_get("/openapi/v2" + SLASH, openapi_v2)
    router.add_get("/openapi/v3" + SLASH, document(openapi.openapi_v3_root))
    router.add_get("/openapi/v3/{gv:.+}", openapi_doc)
    for api_version in API_VERSIONS:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        router.add_route("*", prefix + "/{path:.+}", resources_of(api_version))
    router.add_route("*", "/apis/authentication.k8s.io/v1/{path:.+}", reviews.handle)
    router.add_route("*", "/apis/metrics.k8s.io/v1beta1/{path:.+}", metrics_api.handle)
    router.add_post(certificates.PATH, NodeCredentialRequests(settings, own.creds, nodes, store).create)
    app.on_startup.append(_start)
    app.on_shutdown.append(_end_watches)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    api = app[API_KEY]
    own = app[OWN_TLS_KEY]  # the client certificate towards nodes; the registry of their live certificates
    api.session = aiohttp.ClientSession(connector=NodeConnector(app[_NODE_REGISTRY_KEY], ssl=own.to_nodes))
    binder = app[BINDER_KEY]
    binder.bind_pending()  # pods left unbound by a previous run
    app[_TASKS_KEY].extend([
        asyncio.create_task(binder.run(), name="binder"),
        asyncio.create_task(app[NODE_LIFECYCLE_KEY].run(), name="node-lifecycle"),
        asyncio.create_task(expire_events(api.store, api.hub, api.clock), name="event-expiry"),
        asyncio.create_task(own.run(), name="own-certificates"),
        *(asyncio.create_task(controller.run(), name=controller.name) for controller in app[CONTROLLERS_KEY]),
    ])


async def _end_watches(app: web.Application) -> None:
    """Open watches end at once on shutdown, rather than holding it for its whole timeout."""
    app[API_KEY].hub.close_all()


async def _stop(app: web.Application) -> None:
    for task in app[_TASKS_KEY]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    api = app[API_KEY]
    if api.session is not None:
        await api.session.close()
    api.store.close()


def serve(settings: Settings) -> None:
    """Serve HTTPS on ``cloud_host:cloud_port`` until interrupted."""
    creds = ensure_credentials(settings.cloud_data_dir, settings.credential_lifetime_s)
    app = create_app(settings, creds.token)
    # The loaded store is long-lived: keep it out of the cyclic GC's full collections, which would
    # otherwise pause the loop (and every watch) for tens of milliseconds with thousands of objects.
    gc.collect()
    gc.freeze()
    log.info("cloud API listening", host=settings.cloud_host, port=settings.cloud_port)
    web.run_app(app, host=settings.cloud_host, port=settings.cloud_port, ssl_context=app[OWN_TLS_KEY].server,
                access_log=None, handler_cancellation=True, shutdown_timeout=2, print=None)
