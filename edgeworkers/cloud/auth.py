"""Bearer-token authentication: every request but the health checks needs the cluster's token."""
from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edgeworkers.k8s import status

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


def token_auth(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise status.unauthorized()
        return await handler(request)

    return authenticate
