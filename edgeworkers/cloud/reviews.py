"""``authentication.k8s.io/v1``: who an identity is, as kube-apiserver answers it.

- ``SelfSubjectReview`` (``kubectl auth whoami``): any authenticated caller learns its own user and groups (kube's
  ``system:basic-user`` role grants it to ``system:authenticated``); a node is ``system:node:<name>`` in
  ``system:nodes``.
- ``TokenReview``: the administrator asks who a bearer token is (``status.authenticated``, ``status.user``). A
  token is valid for this API server's audience (``API_AUDIENCES``): a review naming other audiences only is not
  authenticated, as with kube's audience-agnostic token authenticators. A node gets 403: kube's Node authorizer lets
  kubelets review tokens for their own webhook authentication, which this project's node endpoint does not use (it
  admits the cloud's client certificate alone).

Both are create-only: nothing is stored, and the reply (201) is the review with its status filled in.
"""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from edgeworkers.cloud import wire
from edgeworkers.cloud.auth import Identity, identity_of
from edgeworkers.cloud.authorizer import Attributes, Objects, authorize, verb_of
from edgeworkers.cloud.discovery import AUTHENTICATION_GROUP
from edgeworkers.cloud.errors import route_not_found
from edgeworkers.cloud.store import Clock
from edgeworkers.k8s import status
from edgeworkers.k8s.timefmt import format_time

API_VERSION = f"{AUTHENTICATION_GROUP}/v1"
# kube-apiserver's --api-audiences default (its service-account issuer, as kubeadm sets it).
API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
KINDS = {"selfsubjectreviews": "SelfSubjectReview", "tokenreviews": "TokenReview"}


def user_info(identity: Identity) -> dict:
    return {"username": identity.user, "groups": list(identity.groups)}


class Reviews:
    """The two review resources; ``authenticate_token`` is the server's own bearer-token authenticator."""

    def __init__(self, authenticate_token: Callable[[str], Identity | None], objects: Objects, clock: Clock) -> None:
        self._authenticate_token = authenticate_token
        self._objects = objects
        self._clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        parts = [p for p in request.match_info["path"].split("/") if p]
        if len(parts) != 1 or parts[0] not in KINDS:
            raise route_not_found()
        resource = parts[0]
        identity = identity_of(request)
        verb = verb_of(request.method, None, wire.query_flag(request, "watch"))
        authorize(identity, Attributes(verb, resource, group=AUTHENTICATION_GROUP), self._objects)
        if request.method != "POST":
            raise status.method_not_allowed(resource, request.method, AUTHENTICATION_GROUP)
        review = await wire.read_object(request)
        if review.get("kind") not in (None, "", KINDS[resource]):
            raise status.bad_request(f"the kind of the object ({review['kind']}) does not match the resource "
                                     f"({resource})")
        if resource == "selfsubjectreviews":
            return wire.json_response(self.self_subject_review(identity), 201)
        return wire.json_response(self.token_review(review), 201)

    def self_subject_review(self, identity: Identity) -> dict:
        return {"kind": "SelfSubjectReview", "apiVersion": API_VERSION,
                "metadata": {"creationTimestamp": format_time(self._clock())},
                "status": {"userInfo": user_info(identity)}}

    def token_review(self, review: dict) -> dict:
        """The review answered: ``status`` says whether ``spec.token`` is a valid token for the audiences asked."""
        spec = review.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("token"), str) or not spec["token"]:
            raise status.bad_request("token is required for TokenReview in authentication")
        asked = spec.get("audiences") or list(API_AUDIENCES)
        if not isinstance(asked, list) or not all(isinstance(a, str) for a in asked):
            raise status.bad_request("spec.audiences must be a list of strings")
        audiences = [a for a in API_AUDIENCES if a in asked]
        identity = self._authenticate_token(spec["token"]) if audiences else None
        result: dict = {"user": {}}
        if identity is not None:
            result = {"authenticated": True, "user": user_info(identity), "audiences": audiences}
        metadata = review.get("metadata") if isinstance(review.get("metadata"), dict) else {}
        return {"kind": "TokenReview", "apiVersion": API_VERSION,
                "metadata": {"creationTimestamp": None, **metadata}, "spec": spec, "status": result}
