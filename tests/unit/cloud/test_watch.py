import pytest

from edgeworkers.cloud.selectors import parse_field_selector, parse_label_selector
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub, Matcher
from edgeworkers.k8s.status import APIError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db")
    yield s
    s.close()


@pytest.fixture
def hub(store):
    return Hub(store, capacity=4)


def pod(name, labels=None, node=""):
    return {"metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"nodeName": node}}


def drain(watcher):
    out = []
    while not watcher.queue.empty():
        event = watcher.queue.get_nowait()
        out.append((event.type, event.object["metadata"]["name"]))
    return out


def write(store, hub, fn, *args):
    event = fn(*args)
    hub.publish(event)
    store.flush()  # watchers get what is committed
    return event


def test_a_watch_from_zero_starts_with_the_current_objects(store, hub):
    write(store, hub, store.create, "pods", pod("a"))
    write(store, hub, store.create, "pods", pod("b"))
    watcher = hub.subscribe("pods", Matcher("default"), 0)
    assert drain(watcher) == [("ADDED", "a"), ("ADDED", "b")]
    write(store, hub, store.create, "pods", pod("c"))
    assert drain(watcher) == [("ADDED", "c")]


def test_a_watch_from_a_resource_version_replays_what_came_after(store, hub):
    rv = write(store, hub, store.create, "pods", pod("a")).rv
    write(store, hub, store.create, "pods", pod("b"))
    write(store, hub, store.delete, "pods", "default", "a")
    watcher = hub.subscribe("pods", Matcher(None), rv)
    assert drain(watcher) == [("ADDED", "b"), ("DELETED", "a")]


def test_a_resource_version_older_than_the_buffer_is_gone(store, hub):
    first = write(store, hub, store.create, "pods", pod("p0")).rv
    for i in range(1, 6):
        write(store, hub, store.create, "pods", pod(f"p{i}"))
    with pytest.raises(APIError) as err:
        hub.subscribe("pods", Matcher(None), first)
    assert err.value.code == 410 and err.value.reason == "Expired"
    assert err.value.status["message"].startswith(f"too old resource version: {first} (")
    assert hub.subscribe("pods", Matcher(None), store.resource_version - 2).queue.qsize() == 2


def test_other_resources_and_namespaces_are_not_sent(store, hub):
    watcher = hub.subscribe("pods", Matcher("default"), 0)
    write(store, hub, store.create, "configmaps", {"metadata": {"name": "cm", "namespace": "default"}})
    write(store, hub, store.create, "pods", {"metadata": {"name": "x", "namespace": "other"}, "spec": {}})
    assert drain(watcher) == []


def test_an_object_leaving_a_field_selection_is_sent_as_deleted(store, hub):
    created = write(store, hub, store.create, "pods", pod("a", node="n1")).object
    watcher = hub.subscribe("pods", Matcher(None, fields=parse_field_selector("spec.nodeName=n1")), 0)
    assert drain(watcher) == [("ADDED", "a")]
    moved = {**created, "spec": {"nodeName": "n2"}}
    write(store, hub, store.update, "pods", moved)
    assert drain(watcher) == [("DELETED", "a")]
    back = {**store.get("pods", "default", "a"), "spec": {"nodeName": "n1"}}
    write(store, hub, store.update, "pods", back)
    assert drain(watcher) == [("ADDED", "a")]


def test_label_selection_filters_events(store, hub):
    watcher = hub.subscribe("pods", Matcher(None, labels=parse_label_selector("app=web")), 0)
    write(store, hub, store.create, "pods", pod("web", {"app": "web"}))
    write(store, hub, store.create, "pods", pod("db", {"app": "db"}))
    assert drain(watcher) == [("ADDED", "web")]


def test_unsubscribed_watchers_get_nothing_more(store, hub):
    watcher = hub.subscribe("pods", Matcher(None), 0)
    hub.unsubscribe(watcher)
    write(store, hub, store.create, "pods", pod("a"))
    assert drain(watcher) == [] and hub.watcher_count("pods") == 0


def test_listeners_see_every_event(store, hub):
    seen = []
    hub.add_listener(lambda e: seen.append((e.type, e.resource)))
    write(store, hub, store.create, "pods", pod("a"))
    write(store, hub, store.delete, "pods", "default", "a")
    assert seen == [("ADDED", "pods"), ("DELETED", "pods")]


def test_a_pods_event_is_offered_to_its_nodes_watchers_and_to_those_selecting_no_node(store, hub, monkeypatch):
    node_a = hub.subscribe("pods", Matcher(None, fields=parse_field_selector("spec.nodeName=a")), 0)
    node_b = hub.subscribe("pods", Matcher(None, fields=parse_field_selector("spec.nodeName=b")), 0)
    unbound = hub.subscribe("pods", Matcher(None, fields=parse_field_selector("spec.nodeName=")), 0)
    everyone = hub.subscribe("pods", Matcher(None), 0)
    offered = []
    for watcher, name in ((node_a, "a"), (node_b, "b"), (unbound, "unbound"), (everyone, "everyone")):
        monkeypatch.setattr(watcher, "offer", lambda event, real=watcher.offer, name=name: (
            offered.append(name), real(event))[1])
    created = write(store, hub, store.create, "pods", pod("web")).object
    assert sorted(offered) == ["everyone", "unbound"]
    offered.clear()
    write(store, hub, store.update, "pods", {**created, "spec": {"nodeName": "a"}})  # bound: leaves "unbound"
    assert sorted(offered) == ["a", "everyone", "unbound"]
    assert drain(node_a) == [("ADDED", "web")] and drain(node_b) == []
    assert drain(unbound) == [("ADDED", "web"), ("DELETED", "web")]
    hub.unsubscribe(node_a)
    offered.clear()
    write(store, hub, store.delete, "pods", "default", "web")
    assert sorted(offered) == ["everyone"] and hub.watcher_count("pods") == 3
