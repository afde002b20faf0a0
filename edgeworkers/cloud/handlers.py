"""The REST verbs on stored objects: get, list, watch, create, update, patch, delete.

One catch-all route per group-version hands the path to ``parse_target``; ``Api.dispatch`` picks the
verb. Writes follow the API server's order: decode, field validation, defaulting, validation, store,
then the event goes to the watch hub's controllers at once (the binder, the service account controller), and to
watchers once the store has committed it; the request answers after that commit (a failed one answers 500 and
nothing of it is applied).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import aiohttp
import orjson
from aiohttp import web

from edgeworkers.cloud import kinds, logs_proxy, managedfields, ownership, patch, streams_proxy, wire
from edgeworkers.cloud.auth import Identity, identity_of
from edgeworkers.cloud.authorizer import Attributes, admit, authorize, verb_of
from edgeworkers.cloud.binder import bound
from edgeworkers.cloud.errors import route_not_found
from edgeworkers.cloud.fields import check_fields
from edgeworkers.cloud.pagination import paginate
from edgeworkers.cloud.portforward import pod_port_forward
from edgeworkers.cloud.resources import RESOURCES, SEED_NAMESPACES, Resource
from edgeworkers.cloud.scale import scaled, to_scale
from edgeworkers.cloud.selectors import check_selectable, parse_field_selector, parse_label_selector
from edgeworkers.cloud.serviceaccounts import with_account_pull_secrets
from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.tolerations import default_toleration_seconds
from edgeworkers.cloud.watch import Hub, Matcher, stream
from edgeworkers.k8s import pod as pod_model
from edgeworkers.k8s import printers, status, validation
from edgeworkers.k8s.secret import default_secret
from edgeworkers.k8s.timefmt import format_time

# The API server ends a watch after a while (its --min-request-timeout of 1800 s, randomised); clients rewatch.
DEFAULT_WATCH_TIMEOUT = 1800.0
UNSUPPORTED_SUBRESOURCES = ("exec", "attach", "portforward")
EPHEMERAL = "ephemeralcontainers"  # pods/ephemeralcontainers: GET, PUT and PATCH change only spec.ephemeralContainers


@dataclass(frozen=True)
class Target:
    """What a request path names: a resource, a namespace (None: cluster scope or all namespaces),
    an object name and a subresource."""
    resource: Resource
    namespace: str | None
    name: str | None = None
    sub: str | None = None
    dry_run: bool = False  # dryRun=All: validate and answer, store nothing
    user: Identity | None = None  # who asks: a node's writes go through NodeRestriction
    verb: str = ""

    def attributes(self) -> Attributes:
        return Attributes(self.verb, self.resource.name, self.sub, self.namespace, self.name, self.resource.group)


def parse_target(resources: tuple[str, ...], path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] in resources and RESOURCES[parts[2]].namespaced:
        namespace, parts = parts[1], parts[2:]
    if not parts or parts[0] not in resources or len(parts) > 3:
        raise route_not_found()
    resource = RESOURCES[parts[0]]
    if resource.namespaced and namespace is None and len(parts) > 1:
        raise route_not_found()
    return Target(resource, namespace, *parts[1:])


def _copy(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


class Api:
    def __init__(self, store: Store, hub: Hub, clock: Clock, session: aiohttp.ClientSession | None = None,
                 bookmark_interval: float = 30.0, allocators: dict[str, kinds.Allocator] | None = None) -> None:
        self.store, self.hub, self.clock = store, hub, clock
        self.allocators = allocators or {}  # by resource: what its objects take from a pool when stored
        self._terminating: set[str] = set()  # namespaces whose deletion is under way
        self.session = session
        self.bookmark_interval = bookmark_interval

    def seed(self) -> None:
        """The namespaces every cluster has; the dependents of owners that are gone go."""
        for name in SEED_NAMESPACES:
            if self.store.find("namespaces", "", name) is None:
                self.hub.publish(self.store.create("namespaces", _namespace({"metadata": {"name": name}})))
        for event in ownership.collect(self.store, ownership.missing_owners(self.store)):
            self.hub.publish(event)

    def terminating(self, namespace: str) -> bool:
        """Whether ``namespace``'s deletion is under way (the service account controller leaves it alone)."""
        return namespace in self._terminating

    # -- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request, resources: tuple[str, ...]) -> web.StreamResponse:
        response = await self._dispatch(request, resources)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            await self.store.flushed()  # answer once what was written is on disk (committed by the store's thread)
        return response

    async def _dispatch(self, request: web.Request, resources: tuple[str, ...]) -> web.StreamResponse:
        t = parse_target(resources, request.match_info["path"])
        identity = identity_of(request)
        t = replace(t, user=identity, verb=verb_of(request.method, t.name, wire.query_flag(request, "watch")))
        authorize(identity, t.attributes(), self.store)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            t = replace(t, dry_run=_dry_run(request))
        method = request.method
        if t.sub is not None:
            return await self._subresource(request, t)
        if t.name is None:
            if method == "GET":
                return await (self.watch(request, t) if wire.query_flag(request, "watch") else self.list(request, t))
            if method == "POST" and (t.namespace is not None or not t.resource.namespaced):
                return await self.create(request, t)
            if method == "DELETE":
                return await self.delete_collection(request, t)
        elif method == "GET":
            return self.get(request, t)
        elif method == "PUT":
            return await self.replace(request, t)
        elif method == "PATCH":
            return await self.patch(request, t)
        elif method == "DELETE":
            return await self.delete(request, t)
        raise status.method_not_allowed(t.resource.name, method, t.resource.group)

    async def _subresource(self, request: web.Request, t: Target) -> web.StreamResponse:
        resource, method = t.resource, request.method
        if resource.name == "pods" and t.sub == "portforward" and method in ("GET", "POST") and self.session:
            return await pod_port_forward(request, self.store, self.session, t.namespace or "", t.name or "")
        if resource.name == "pods" and t.sub in ("exec", "attach") and method in ("GET", "POST") and self.session:
            return await streams_proxy.pod_stream(request, self.store, self.session, t.namespace or "", t.name or "",
                                                  t.sub)
        if resource.name == "pods" and t.sub in UNSUPPORTED_SUBRESOURCES:
            raise status.bad_request(f"{t.sub} is not supported by this server yet")
        if resource.name == "pods" and t.sub == "log" and method == "GET":
            if self.session is None:
                raise status.internal("logs are not available: no HTTP client")
            return await logs_proxy.pod_logs(request, self.store, self.session, t.namespace or "", t.name or "")
        if resource.name == "pods" and t.sub == "binding" and method == "POST":
            return await self.bind(request, t)
        if t.sub == "scale" and resource.scalable:
            return await self._scale(request, t)
        if (t.sub == "status" and resource.has_status) or (resource.name == "pods" and t.sub == EPHEMERAL):
            if method == "GET":
                return self.get(request, t)
            if method == "PUT":
                return await self.replace(request, t)
            if method == "PATCH":
                return await self.patch(request, t)
            raise status.method_not_allowed(f"{resource.name}/{t.sub}", method, resource.group)
        raise route_not_found()

    async def _scale(self, request: web.Request, t: Target) -> web.Response:
        """GET, PUT or PATCH an autoscaling/v1 Scale: a write changes the workload's ``spec.replicas``."""
        if request.method == "GET":
            return wire.json_response(to_scale(self.store.get_visible(t.resource.name, t.namespace or "", t.name or "")))
        live = self.store.get(t.resource.name, t.namespace or "", t.name or "")
        if request.method == "PUT":
            new = scaled(live, await wire.read_object(request))
        elif request.method == "PATCH":
            new = scaled(live, await _patched(request, to_scale(live), "Scale"))
        else:
            raise status.method_not_allowed(f"{t.resource.name}/scale", request.method, t.resource.group)
        return wire.json_response(to_scale(self._update(t, live, new, field_manager(request))))

    # -- reads ---------------------------------------------------------------------------------

    def get(self, request: web.Request, t: Target) -> web.Response:
        obj = self.store.get_visible(t.resource.name, t.namespace or "", t.name or "")
        if wire.wants_table(request):
            return wire.json_response(
                printers.to_table(t.resource.name, [obj], obj["metadata"]["resourceVersion"], self.clock()))
        return wire.json_response(obj)

    def _matcher(self, request: web.Request, t: Target) -> Matcher:
        label_selector, field_selector = request.query.get("labelSelector"), request.query.get("fieldSelector")
        try:
            labels = parse_label_selector(label_selector) if label_selector else None
            fields = parse_field_selector(field_selector) if field_selector else None
            if fields is not None:
                check_selectable(t.resource.name, fields)
        except ValueError as exc:
            raise status.bad_request(str(exc)) from exc
        return Matcher(t.namespace, labels, fields)

    async def list(self, request: web.Request, t: Target) -> web.Response:
        matches = self._matcher(request, t)
        token = request.query.get("continue")
        if token and request.query.get("resourceVersion"):
            raise status.bad_request("specifying resource version is not allowed when using continue")
        items = [o for o in self.store.list_visible(t.resource.name, t.namespace) if matches(o)]
        page = paginate(items, self.store.resource_version, wire.query_int(request, "limit"), token,
                        namespaced=t.resource.namespaced, selected=matches.labels is not None or
                        matches.fields is not None)
        if wire.wants_table(request):
            table = printers.to_table(t.resource.name, page.items, str(page.resource_version), self.clock())
            return wire.json_response({**table, "metadata": page.list_meta()})
        return wire.json_response({
            "kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
            "metadata": page.list_meta(), "items": page.items,
        })

    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        matches = self._matcher(request, t)
        since = wire.query_int(request, "resourceVersion")
        timeout = wire.query_int(request, "timeoutSeconds")
        try:
            watcher = self.hub.subscribe(t.resource.name, matches, since)
        except status.APIError as exc:
            if exc.code != 410:
                raise
            # As the API server's watch cache answers: the stream opens with one ERROR event, then ends.
            return web.Response(body=orjson.dumps({"type": "ERROR", "object": exc.status}) + b"\n",
                                content_type=wire.JSON)
        if wire.wants_table(request):
            def encode(kind: str, obj: dict) -> bytes:
                rows = [] if kind == "BOOKMARK" else [obj]
                table = printers.to_table(t.resource.name, rows, obj["metadata"]["resourceVersion"], self.clock())
                return orjson.dumps({"type": kind, "object": table}) + b"\n"
        else:
            def encode(kind: str, obj: dict) -> bytes:
                return orjson.dumps({"type": kind, "object": obj}) + b"\n"
        bookmarks = self.bookmark_interval if wire.query_flag(request, "allowWatchBookmarks") else None
        return await stream(request, self.hub, watcher, encode,
                            timeout=float(timeout) if timeout else DEFAULT_WATCH_TIMEOUT,
                            bookmark_interval=bookmarks)

    # -- writes --------------------------------------------------------------------------------

    async def create(self, request: web.Request, t: Target) -> web.Response:
        obj = await wire.read_object(request)
        warnings = self._admit_body(request, t, obj)
        if obj["metadata"].get("resourceVersion"):  # as kube-apiserver's BeforeCreate
            raise status.bad_request("resourceVersion should not be set on objects to be created")
        return wire.json_response(self._create(t, obj, field_manager(request)), 201, warnings)

    def _create(self, t: Target, obj: dict, manager: str | None) -> dict:
        """Store a new object; ``manager`` (None for an apply, which records its own) gets a managedFields entry."""
        meta = obj["metadata"]
        if t.resource.namespaced and self.store.find("namespaces", "", meta["namespace"]) is None:
            raise status.not_found("namespaces", meta["namespace"])
        meta.pop("uid", None)  # the server's own, as BeforeCreate's FillObjectMetaSystemFields
        obj = _prepare_create(t.resource, obj)
        if t.resource.name == "pods":
            obj = with_account_pull_secrets(self.store, obj)
        if manager is not None:
            obj = managedfields.record_update(None, obj, manager, "Update", format_time(self.clock()))
        if t.user is not None:
            admit(t.user, t.attributes(), obj, None)
        if (allocator := self.allocators.get(t.resource.name)) is not None:
            obj = allocator.allocate(obj, None, t.dry_run)
        _validate(t.resource, obj, None)
        if t.dry_run:
            return obj
        event = self.store.create(t.resource.name, obj)
        self.hub.publish(event)
        return event.object

    def _admit_body(self, request: web.Request, t: Target, obj: dict) -> list[str]:
        """Check a body against its URL (kind, namespace, name) and apply ``fieldValidation``."""
        kind = obj.get("kind")
        if kind and kind != t.resource.kind:
            raise status.bad_request(
                f'the kind of the object ({kind}) does not match the resource ({t.resource.name})')
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise status.bad_request("metadata must be an object")
        if t.resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != t.namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        if t.name is not None and meta.get("name") and meta["name"] != t.name:
            raise status.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({t.name})")
        if t.name is not None:
            meta["name"] = t.name
        return check_fields(t.resource, obj, request.query.get("fieldValidation", "Warn"))

    async def replace(self, request: web.Request, t: Target) -> web.Response:
        obj = await wire.read_object(request)
        warnings = self._admit_body(request, t, obj)
        old = self.store.get(t.resource.name, t.namespace or "", t.name or "")
        # As the API server: an update's uid is a precondition (409), checked before validation; a patch
        # has none, and a different uid it sets is refused by validation (422, the uid is immutable).
        _check_preconditions(t, old, {"uid": obj["metadata"].get("uid")})
        return wire.json_response(self._update(t, old, obj, field_manager(request)), 200, warnings)

    def _update(self, t: Target, old: dict, new: dict, manager: str | None) -> dict:
        if t.sub in ("status", EPHEMERAL):
            # /status changes only the status, /ephemeralcontainers only spec.ephemeralContainers (kube's
            # dropNonEphemeralContainerUpdates); the caller's resourceVersion is a precondition, and a uid is
            # kept for validation, which refuses a different one (a write meant for a deleted namesake).
            given = {k: v for k, v in new["metadata"].items() if k in ("resourceVersion", "uid") and v}
            changed, new = new, _copy(old)
            if t.sub == "status":
                new["status"] = changed.get("status", {})
            elif ephemeral := (changed.get("spec") or {}).get("ephemeralContainers"):
                new["spec"]["ephemeralContainers"] = ephemeral
            else:
                new["spec"].pop("ephemeralContainers", None)  # validation refuses the removal of any there
            new["metadata"].update(given)
        elif t.resource.has_status:
            if "status" in old:
                new["status"] = _copy(old["status"])
            else:
                new.pop("status", None)
        new = _prepare_update(t.resource, new, t.sub)
        if manager is not None:
            new = managedfields.record_update(old, new, manager, "Update", format_time(self.clock()), t.sub or "")
        if t.user is not None:
            admit(t.user, t.attributes(), new, old)
        if (allocator := self.allocators.get(t.resource.name)) is not None and t.sub is None:
            new = allocator.allocate(new, old, t.dry_run)
        _validate(t.resource, new, old, t.sub)
        if t.dry_run:
            return new
        if ownership.finalized(old, new):  # its last finalizer removed: it goes, as it was (kube's deleteWithoutFinalizers)
            if new["metadata"].get("resourceVersion") not in (None, "", old["metadata"]["resourceVersion"]):
                raise status.conflict(t.resource.name, old["metadata"]["name"], group=t.resource.group)
            with self.store.atomic():
                for event in ownership.delete_finalized(self.store, t.resource.name, old):
                    self.hub.publish(event)
            return old
        if new["metadata"].get("resourceVersion") in (None, "", old["metadata"]["resourceVersion"]) \
                and _content(new) == _content(old):
            return old  # a no-op write: no new resourceVersion, no event (only managedFields times differ)
        event = self.store.update(t.resource.name, new)
        self.hub.publish(event)
        return event.object if event else old

    async def patch(self, request: web.Request, t: Target) -> web.Response:
        kind = wire.media_type(request)
        if kind not in wire.PATCH_TYPES:
            raise status.unsupported_media_type(kind, wire.PATCH_TYPES)
        body = await request.read()
        live = self.store.find(t.resource.name, t.namespace or "", t.name or "")
        if kind == wire.APPLY:
            return self._apply(request, t, live, body)
        if live is None:
            raise status.not_found(t.resource.name, t.name or "", t.resource.group)
        result = await _patched(request, live, t.resource.kind)
        if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
            raise status.bad_request("the patch leaves no object")
        meta = result["metadata"]
        if meta.get("name") != t.name:
            raise status.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})")
        if t.resource.namespaced:
            meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        warnings = check_fields(t.resource, result, request.query.get("fieldValidation", "Warn"))
        return wire.json_response(self._update(t, live, result, field_manager(request)), 200, warnings)

    def _apply(self, request: web.Request, t: Target, live: dict | None, body: bytes) -> web.Response:
        """Server-side apply: merge the applied configuration, creating the object when absent."""
        applied = wire.decode_yaml(body)
        if not isinstance(applied, dict):
            raise status.bad_request("the body of an apply patch must be an object")
        manager = request.query.get("fieldManager")
        if not manager:
            raise status.bad_request("PATCH, application/apply-patch+yaml requests must specify a fieldManager")
        warnings = self._admit_body(request, t, applied)
        if live is None and t.sub is not None:
            raise status.not_found(t.resource.name, t.name or "", t.resource.group)
        try:
            result = managedfields.server_side_apply(live, applied, manager, wire.query_flag(request, "force"),
                                             format_time(self.clock()))
        except managedfields.ConflictError as exc:
            raise _apply_conflict(t, t.name or "", exc) from exc
        except ValueError as exc:  # a list item without its merge key, a directive that cannot apply
            raise status.bad_request(str(exc)) from exc
        if live is None:
            return wire.json_response(self._create(t, result, None), 201, warnings)
        return wire.json_response(self._update(t, live, result, None), 200, warnings)

    async def bind(self, request: web.Request, t: Target) -> web.Response:
        binding = await wire.read_object(request)
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise status.invalid("Binding", t.name or "", [status.required("target.name")])
        pod = self.store.get("pods", t.namespace or "", t.name or "")
        if (pod.get("spec") or {}).get("nodeName"):
            raise status.conflict("pods", t.name or "",
                                  f"pod {t.name} is already assigned to node \"{pod['spec']['nodeName']}\"")
        self.hub.publish(self.store.update("pods", bound(pod, node, format_time(self.clock()))))
        return wire.json_response(status.status_success(), 201)

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        grace, policy, preconditions = await _delete_options(request)
        obj = self.store.get(t.resource.name, t.namespace or "", t.name or "")
        return wire.json_response(self._delete(t, obj, grace, policy, preconditions))

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        """DELETE on a collection: every object the namespace and selectors select, each as its own delete would go,
        in one transaction; answers the list of what was deleted (or marked for deletion)."""
        if not t.resource.namespaced or t.namespace is None:
            raise status.method_not_allowed(t.resource.name, "DELETE", t.resource.group)
        grace, policy, preconditions = await _delete_options(request)
        matches = self._matcher(request, t)
        items = []
        with self.store.atomic():
            for obj in [o for o in self.store.list(t.resource.name, t.namespace) if matches(o)]:
                items.append(self._delete(replace(t, name=obj["metadata"]["name"]), obj, grace, policy, preconditions))
        await self.store.flushed()  # the list's resourceVersion is the committed one, its deletions included
        return wire.json_response({"kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
                                   "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items})

    def _delete(self, t: Target, obj: dict, grace: int | None, policy: str | None, preconditions: dict) -> dict:
        """Delete (or mark for deletion: a pod bound to a node, an object that finalizers keep) one object; what the
        request answers."""
        namespace, name = t.namespace or "", t.name or ""
        _check_preconditions(t, obj, preconditions)
        if t.resource.name == "namespaces" and name in SEED_NAMESPACES:
            raise status.forbidden("namespaces", name, "this namespace may not be deleted")
        if t.dry_run:
            return obj
        if t.resource.name != "namespaces":
            with self.store.atomic():
                answer, events = ownership.delete(self.store, t.resource.name, obj, grace, policy)
                for event in events:
                    self.hub.publish(event)
            return answer
        deleted = {obj["metadata"]["uid"]}
        with self.store.atomic():  # a namespace goes with all its objects, or nothing goes
            self._terminating.add(name)
            try:
                for resource in RESOURCES.values():
                    if resource.namespaced:
                        for item in self.store.list(resource.name, name):
                            deleted.add(item["metadata"]["uid"])
                            self.hub.publish(self.store.delete(resource.name, name, item["metadata"]["name"]))
                event = self.store.delete(t.resource.name, namespace, name)
                self.hub.publish(event)
            finally:
                self._terminating.discard(name)
            for dependent in ownership.collect(self.store, deleted):
                self.hub.publish(dependent)
        return event.object


async def _patched(request: web.Request, live: dict, kind: str) -> object:
    """``live`` with the request's strategic merge, JSON merge or JSON patch applied (a copy)."""
    media = wire.media_type(request)
    if media not in wire.PATCH_TYPES or media == wire.APPLY:
        raise status.unsupported_media_type(media, tuple(t for t in wire.PATCH_TYPES if t != wire.APPLY))
    operations = wire.decode_json(await request.read())
    try:
        if media == wire.STRATEGIC:
            return patch.strategic_merge(_copy(live), operations, kind)
        if media == wire.MERGE:
            return patch.merge_patch(_copy(live), operations)
        return patch.json_patch(_copy(live), operations)
    except patch.PatchTestFailed as exc:  # as kube-apiserver: 422, the request was understood but does not hold
        raise status.APIError({**status.bad_request(str(exc)).status, "reason": "Invalid", "code": 422}) from exc
    except ValueError as exc:
        raise status.bad_request(str(exc)) from exc


async def _delete_options(request: web.Request) -> tuple[int | None, str | None, dict]:
    """A delete's grace period and propagation policy (query or DeleteOptions; None: not given) and preconditions."""
    body = await request.read()
    options = wire.decode_json(body) if body.strip() else {}
    if not isinstance(options, dict):
        raise status.bad_request("DeleteOptions must be an object")
    grace = wire.query_int(request, "gracePeriodSeconds")
    if grace is None:
        grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        raise status.bad_request(f"gracePeriodSeconds must be a non-negative integer, not {grace!r}")
    policy = options.get("propagationPolicy") or request.query.get("propagationPolicy") or None
    if policy is not None and policy not in ownership.PROPAGATION_POLICIES:
        raise status.invalid("DeleteOptions", "", [status.not_supported(
            "propagationPolicy", policy, ownership.PROPAGATION_POLICIES)], "meta.k8s.io")
    preconditions = options.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise status.bad_request("preconditions must be an object")
    return grace, policy, preconditions


def _content(obj: dict) -> dict:
    """An object without what every write changes (resourceVersion, managedFields times), and its type."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    managed = obj["metadata"].get("managedFields") or []
    meta["managedFields"] = [{k: v for k, v in entry.items() if k != "time"} for entry in managed]
    return {**{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}, "metadata": meta}


def _dry_run(request: web.Request) -> bool:
    value = request.query.get("dryRun", "")
    if value not in ("", "All"):
        raise status.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return value == "All"


def field_manager(request: web.Request) -> str:
    """The writer's name: ``fieldManager``, else the User-Agent's program name, as the API server does."""
    return request.query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0]


def _apply_conflict(t: Target, name: str, exc: managedfields.ConflictError) -> status.APIError:
    err = status.conflict(t.resource.name, name, group=t.resource.group)
    err.status["message"] = exc.message
    err.status["details"]["causes"] = exc.causes()
    return err


def _check_preconditions(t: Target, obj: dict, preconditions: dict) -> None:
    meta = obj["metadata"]
    for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(key)
        if wanted and wanted != meta.get(key):
            raise status.conflict(
                t.resource.name, meta["name"],
                f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {meta.get(key)}",
                t.resource.group)


def _namespace(obj: dict) -> dict:
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj["status"] = {"phase": "Active"}
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    return obj


def _prepare_create(resource: Resource, obj: dict) -> dict:
    """Defaults, then the mutating admission (DefaultTolerationSeconds), of a new object."""
    if resource.name == "pods":
        obj = default_toleration_seconds(pod_model.default_pod(obj))
        obj["status"] = {"phase": "Pending"}
        return obj
    if resource.name == "namespaces":
        return _namespace(obj)
    if resource.name == "secrets":
        return default_secret(obj)
    if resource.name in kinds.FRESH_STATUS:
        obj["status"] = {}
    return kinds.DEFAULTERS.get(resource.name, _same)(obj)


def _same(obj: dict) -> dict:
    return obj


def _prepare_update(resource: Resource, obj: dict, sub: str | None) -> dict:
    if resource.name == "pods":
        pod = pod_model.default_pod(obj)
        return pod if sub else default_toleration_seconds(pod)  # admission leaves subresources alone
    if resource.name == "secrets":
        return default_secret(obj)
    return kinds.DEFAULTERS.get(resource.name, _same)(obj)


def _validate(resource: Resource, obj: dict, old: dict | None, sub: str | None = None) -> None:
    name = (obj.get("metadata") or {}).get("name") or ""
    if resource.name == "pods" and old is not None and sub == EPHEMERAL:
        errors = validation.validate_pod_ephemeral_containers_update(old, obj)
    elif resource.name == "pods":
        errors = validation.validate_pod(obj) if old is None else validation.validate_pod_update(old, obj)
    elif resource.name == "configmaps":
        errors = validation.validate_configmap(obj) if old is None else validation.validate_configmap_update(old, obj)
    elif resource.name == "secrets":
        errors = validation.validate_secret(obj) if old is None else validation.validate_secret_update(old, obj)
    elif resource.name == "nodes":
        errors = validation.validate_node(obj)
    elif resource.name in kinds.VALIDATORS:
        errors = validation.validate_object_meta(obj.get("metadata") or {}, resource.namespaced)
        errors += kinds.VALIDATORS[resource.name](obj, old)
    else:
        errors = validation.validate_object_meta(obj.get("metadata") or {}, resource.namespaced)
    if old is not None and resource.name in ("nodes", "namespaces", "events", "leases"):
        errors += validation.validate_object_meta_update(old["metadata"], obj["metadata"])
    if old is not None:
        errors += validation.validate_no_new_finalizers(old["metadata"], obj["metadata"])
    if errors:
        raise status.invalid(resource.kind, name, errors, resource.group)
