"""Taint-based eviction's decision, from a table: when a pod on a NoExecute-tainted node is to go."""
import datetime as dt

import pytest

from edgeworkers.cloud.tainteviction import disruption_target, eviction_deadline

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
NO_SCHEDULE = {"key": "dedicated", "effect": "NoSchedule"}


def tol(key="node.kubernetes.io/unreachable", seconds=None, effect="NoExecute", **more):
    toleration = {"key": key, "operator": "Exists", "effect": effect, **more}
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return toleration


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("tolerations, taints, want", [
    ([], [], None),  # no taint: never
    ([], [NO_SCHEDULE], None),  # not NoExecute: not the eviction's business
    ([], [UNREACHABLE], at(0)),  # untolerated: at once
    ([tol(seconds=300)], [UNREACHABLE], at(300)),  # DefaultTolerationSeconds
    ([tol()], [UNREACHABLE], None),  # tolerated without a limit: never
    ([tol(seconds=0)], [UNREACHABLE], at(0)),
    ([tol(seconds=-5)], [UNREACHABLE], at(0)),
    ([tol(seconds=300)], [UNREACHABLE, NOT_READY], at(0)),  # one taint untolerated
    ([tol(seconds=300), tol(NOT_READY["key"], 60)], [UNREACHABLE, NOT_READY], at(60)),  # the shortest
    ([{"operator": "Exists"}], [UNREACHABLE, NOT_READY], None),  # tolerates everything
    ([tol(seconds=30), tol(seconds=600)], [UNREACHABLE], at(30)),  # the first matching toleration
    ([tol(effect="NoSchedule", seconds=10)], [UNREACHABLE], at(0)),  # the wrong effect tolerates nothing
    (["junk", tol(seconds=10)], [UNREACHABLE], at(10)),
])
def test_eviction_deadline(tolerations, taints, want):
    pod = {"spec": {"tolerations": tolerations}}
    assert eviction_deadline(pod, taints, lambda taint: T0) == want


def test_each_taint_counts_from_its_own_time():
    since = {UNREACHABLE["key"]: at(100), NOT_READY["key"]: at(0)}
    pod = {"spec": {"tolerations": [tol(seconds=60), tol(NOT_READY["key"], 120)]}}
    assert eviction_deadline(pod, [UNREACHABLE, NOT_READY], lambda taint: since[taint["key"]]) == at(120)


def test_disruption_target_replaces_an_older_one_and_keeps_the_rest():
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"},
                                                 {"type": "DisruptionTarget", "status": "True", "reason": "Old"}]}
    assert disruption_target(status, "2026-11-29T12:00:00Z") == {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-11-29T12:00:00Z",
         "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint"}]}
