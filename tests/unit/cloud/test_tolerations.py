"""DefaultTolerationSeconds: the NoExecute tolerations of not-ready and unreachable nodes a pod lacks."""
import pytest

from edgeworkers.cloud.tolerations import default_toleration_seconds

NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}


def tolerations_after(tolerations):
    spec = {"containers": []} if tolerations is None else {"containers": [], "tolerations": tolerations}
    return default_toleration_seconds({"spec": spec})["spec"]["tolerations"]


@pytest.mark.parametrize(("given", "expected"), [
    (None, [NOT_READY, UNREACHABLE]),
    ([], [NOT_READY, UNREACHABLE]),
    # a pod's own toleration of one taint is kept as written; only the other is added
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}],
     [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}, NOT_READY]),
    # an empty key tolerates every taint, an empty effect every effect
    ([{"operator": "Exists"}], [{"operator": "Exists"}]),
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}],
     [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}, UNREACHABLE]),
    # NoSchedule tolerations do not count
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
     [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}, NOT_READY,
      UNREACHABLE]),
    ([NOT_READY, UNREACHABLE], [NOT_READY, UNREACHABLE]),  # idempotent: an update adds nothing more
])
def test_default_tolerations_are_added_unless_the_pod_tolerates_the_taint(given, expected):
    assert tolerations_after(given) == expected


def test_a_pod_without_a_spec_object_is_left_to_validation():
    assert default_toleration_seconds({"spec": "nonsense"}) == {"spec": "nonsense"}
