"""Every failure leaves as a Kubernetes ``Status``: API errors, aiohttp's HTTP errors, and bugs (500)."""
from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from edgeworkers.cloud.wire import MAX_BODY, json_response
from edgeworkers.k8s import status

log = structlog.get_logger(__name__)


def route_not_found() -> status.APIError:
    """What the API server answers for a path it does not serve."""
    return status.APIError({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound",
        "details": {}, "code": 404,
    })


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except status.APIError as exc:
        return json_response(exc.status, exc.code)
    except web.HTTPRequestEntityTooLarge:
        err = status.too_large(f"limit is {MAX_BODY}")
        return json_response(err.status, err.code)
    except web.HTTPNotFound:
        err = route_not_found()
        return json_response(err.status, err.code)
    except web.HTTPMethodNotAllowed:
        err = status.method_not_allowed("", request.method)
        return json_response(err.status, err.code)
    except web.HTTPException:
        raise
    except Exception:
        # The detail goes to the log only: an exception's text may hold what the caller must not see.
        log.exception("request failed", method=request.method, path=request.path)
        err = status.internal("an internal error occurred; the server's log has the detail")
        return json_response(err.status, err.code)
