"""Label and field selectors: apimachinery's syntax, matching and error messages."""
from __future__ import annotations

import pytest

from edgeworkers.cloud.selectors import check_selectable, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "edge", "rank": "5", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("missing notin (db)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("empty=", True),
        ("app=web,tier=edge", True),
        ("app=web,tier=cloud", False),
        ("  app = web , !missing ", True),
        ("rank>4", True),
        ("rank<4", False),
        ("app>4", False),
        ("example.com/role=x", False),
    ],
)
def test_label_selector_matching(selector, matches):
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_label_selector_requirements_are_exposed():
    selector = parse_label_selector("app in (a,b),!x")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [("app", "in", ("a", "b")),
                                                                               ("x", "!", ())]
    assert parse_label_selector("").empty() and parse_label_selector("").matches(None)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app web", "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"),
        ("app in ()", "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"),
        ("app in (a", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("app in a", "unable to parse requirement: found 'a', expected: '('"),
        ("app=a b", "found 'b', expected: ',' or 'end of string'"),
        ("app=web,", "found '', expected: identifier after ','"),
        ("=web", "unable to parse requirement: found '=', expected: identifier"),
        ("app=we$b", 'unable to parse requirement: values[0][app]: Invalid value: "we$b": a valid label must be'),
        ("-app=x", 'unable to parse requirement: key: Invalid value: "-app": name part must consist of'),
        ("rank>x", "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"),
    ],
)
def test_label_selector_errors(selector, message):
    with pytest.raises(ValueError) as info:
        parse_label_selector(selector)
    assert str(info.value).startswith(message)


POD = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "edge-1", "hostNetwork": True},
       "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("metadata.name=p", True),
        ("metadata.name==p", True),
        ("metadata.name=q", False),
        ("metadata.namespace=default,spec.nodeName=edge-1", True),
        ("spec.nodeName=edge-1,status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.phase!=Running", False),
        ("spec.schedulerName=", True),
        ("spec.hostNetwork=true", True),
        ("involvedObject.name=p", False),
    ],
)
def test_field_selector_matching(selector, matches):
    assert parse_field_selector(selector).matches(POD) is matches


def test_field_selector_requirements_and_escapes():
    selector = parse_field_selector(r"involvedObject.name=a\,b,involvedObject.uid!=u")
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [
        ("involvedObject.name", "=", "a,b"), ("involvedObject.uid", "!=", "u")]
    assert selector.value_of("involvedObject.name") == "a,b"
    assert selector.value_of("involvedObject.uid") is None
    assert selector.matches({"involvedObject": {"name": "a,b", "uid": "v"}})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("=x", "invalid selector: '=x'; can't understand '=x'"),
        (r"a=b\x", "invalid field selector: invalid escape sequence"),
    ],
)
def test_field_selector_errors(selector, message):
    with pytest.raises(ValueError) as info:
        parse_field_selector(selector)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("resource", "selector", "supported"),
    [
        ("pods", "metadata.name=p,spec.nodeName=n,status.phase!=Failed", True),
        ("events", "involvedObject.name=p,involvedObject.uid=u,type=Warning", True),
        ("configmaps", "metadata.namespace=default", True),
        ("secrets", "type=Opaque", True),
        ("nodes", "spec.unschedulable=false", True),
        ("configmaps", "data.a=b", False),
        ("pods", "spec.containers=x", False),
    ],
)
def test_selectable_fields(resource, selector, supported):
    parsed = parse_field_selector(selector)
    if supported:
        check_selectable(resource, parsed)
    else:
        with pytest.raises(ValueError, match="^field label not supported: "):
            check_selectable(resource, parsed)


def test_an_events_source_is_its_reporting_component():
    event = {"metadata": {"name": "e"}, "source": {"component": "kubelet", "host": "edge-1"}}
    assert parse_field_selector("source=kubelet").matches(event)
    assert not parse_field_selector("source=default-scheduler").matches(event)
