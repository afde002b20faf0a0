"""``limit`` / ``continue``: pages in store order, the API server's token, and its errors."""
import base64

import orjson
import pytest

from edgeworkers.cloud.pagination import decode_continue, encode_continue, paginate
from edgeworkers.k8s.status import APIError


def objs(*keys):
    return [{"metadata": {"namespace": ns, "name": name}} for ns, name in keys]


ITEMS = objs(("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "w"))


def names(page):
    return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items]


def test_pages_follow_each_other_until_the_last_which_has_no_token():
    seen, token, pages = [], None, 0
    while True:
        page = paginate(ITEMS, 1042, 2, token, namespaced=True, selected=False)
        pages += 1
        seen += names(page)
        assert page.resource_version == 1042
        token = page.continue_token
        if not token:
            assert "continue" not in page.list_meta()
            break
        assert page.list_meta()["remainingItemCount"] == len(ITEMS) - len(seen)
    assert pages == 3
    assert seen == names(paginate(ITEMS, 1042, None, None, namespaced=True, selected=False))


def test_the_token_is_the_api_servers_form_and_keeps_the_first_pages_resource_version():
    token = paginate(ITEMS, 1042, 2, None, namespaced=True, selected=False).continue_token
    body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert body == {"v": "meta.k8s.io/v1", "rv": 1042, "start": "a/y\x00"}
    later = paginate(ITEMS, 1099, 2, token, namespaced=True, selected=False)
    assert later.resource_version == 1042 and names(later) == [("b", "x"), ("b", "z")]


def test_an_object_created_after_the_first_page_is_listed_if_it_sorts_after_it():
    token = paginate(ITEMS, 1042, 2, None, namespaced=True, selected=False).continue_token
    grown = sorted(ITEMS + objs(("a", "a"), ("a", "z")), key=lambda o: tuple(o["metadata"].values()))
    assert names(paginate(grown, 1050, None, token, namespaced=True, selected=False))[0] == ("a", "z")


def test_selected_lists_leave_the_remaining_count_out():
    page = paginate(ITEMS, 1042, 2, None, namespaced=True, selected=True)
    assert page.continue_token and "remainingItemCount" not in page.list_meta()


@pytest.mark.parametrize("limit", [None, 0, -1, 5, 500])
def test_no_limit_or_a_large_one_gives_everything_at_once(limit):
    page = paginate(ITEMS, 1042, limit, None, namespaced=True, selected=False)
    assert len(page.items) == 5 and page.list_meta() == {"resourceVersion": "1042"}


def test_cluster_scoped_keys_are_bare_names():
    nodes = objs(("", "n1"), ("", "n2"), ("", "n3"))
    token = paginate(nodes, 7, 1, None, namespaced=False, selected=False).continue_token
    assert decode_continue(token, namespaced=False) == (7, ("", "n1"))
    assert names(paginate(nodes, 7, 5, token, namespaced=False, selected=False)) == [("", "n2"), ("", "n3")]


def _token(body) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode()


@pytest.mark.parametrize(("token", "reason"), [
    ("%%%", "continue key is not valid"),
    (_token({"v": "v2", "rv": 5, "start": "a/b\x00"}), "server does not recognize this encoded version"),
    (_token({"v": "meta.k8s.io/v1", "rv": 0, "start": "a/b\x00"}), "incorrect encoded start resourceVersion"),
    (_token({"v": "meta.k8s.io/v1", "rv": 5, "start": "a/b"}), "the start key is not a key the server gave"),
    (_token({"v": "meta.k8s.io/v1", "rv": 5, "start": "b\x00"}), "the start key is not a key the server gave"),
])
def test_a_malformed_token_is_a_bad_request(token, reason):
    with pytest.raises(APIError) as info:
        paginate(ITEMS, 1042, 2, token, namespaced=True, selected=False)
    assert info.value.code == 400
    assert info.value.status["message"].startswith("invalid continue token: continue key is not valid: ")
    assert reason in info.value.status["message"]


def test_encode_and_decode_are_inverse():
    assert decode_continue(encode_continue(9, ("ns", "name"), True), True) == (9, ("ns", "name"))
