"""``limit`` and ``continue``: a list in pages, with the API server's continue token.

The token has the API server's form: base64 of ``{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\\u0000"}``,
where the key is the last listed object's ``namespace/name`` (``name`` when cluster-scoped) and ``rv`` the
first page's resourceVersion, which every page carries. Where the API server reads each page from the
snapshot at ``rv``, the next page here holds the objects as they are now, after that key: an object
created or deleted between pages is listed or not by where its name sorts (a watch from ``rv`` still
sees every change). ``remainingItemCount`` is set when no selector is used, as the API server sets it.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from edgeworkers.k8s import status

TOKEN_VERSION = "meta.k8s.io/v1"


@dataclass(frozen=True)
class Page:
    items: list[dict]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None

    def list_meta(self) -> dict:
        """The list's ``metadata``: resourceVersion, and continue and remainingItemCount when more follow."""
        meta: dict = {"resourceVersion": str(self.resource_version)}
        if self.continue_token:
            meta["continue"] = self.continue_token
            if self.remaining is not None:
                meta["remainingItemCount"] = self.remaining
        return meta


def _key(obj: dict) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def encode_continue(rv: int, last: tuple[str, str], namespaced: bool) -> str:
    key = f"{last[0]}/{last[1]}" if namespaced else last[1]
    body = orjson.dumps({"v": TOKEN_VERSION, "rv": rv, "start": key + "\x00"})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_continue(token: str, namespaced: bool) -> tuple[int, tuple[str, str]]:
    """(resourceVersion, last key listed) of a token; a malformed one is the API server's 400."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _invalid(str(exc)) from exc
    if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
        version = body.get("v") if isinstance(body, dict) else None
        raise _invalid(f"server does not recognize this encoded version {version!r}")
    rv, start = body.get("rv"), body.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv <= 0:
        raise _invalid(f"incorrect encoded start resourceVersion (version {TOKEN_VERSION})")
    if not isinstance(start, str) or not start.endswith("\x00"):
        raise _invalid("the start key is not a key the server gave")
    namespace, slash, name = start[:-1].rpartition("/")
    if not name or namespaced != bool(slash):
        raise _invalid("the start key is not a key the server gave")
    return rv, (namespace, name)


def _invalid(reason: str) -> status.APIError:
    return status.bad_request(f"invalid continue token: continue key is not valid: {reason}")


def paginate(items: list[dict], rv: int, limit: int | None, token: str | None, *, namespaced: bool,
             selected: bool) -> Page:
    """The page of ``items`` (sorted by namespace and name, as the store lists them) that the query asks for.

    ``selected`` says a label or field selector chose ``items``, which leaves the remaining count unknown.
    """
    if token:
        rv, last = decode_continue(token, namespaced)
        items = [obj for obj in items if _key(obj) > last]
    if not limit or limit <= 0 or len(items) <= limit:
        return Page(items, rv)
    page = items[:limit]
    return Page(page, rv, encode_continue(rv, _key(page[-1]), namespaced),
                None if selected else len(items) - limit)
