"""status.digest: what of a pod status the node asserts, timestamps and wording aside."""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.status.digest import status_differs

READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
         "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}]}
NOT_READY = {**READY, "conditions": [{"type": "Ready", "status": "False"}]}


def _with(status: dict, **change: Any) -> dict:
    container = {**status["containerStatuses"][0], **change}
    return {**status, "containerStatuses": [container]}


@pytest.mark.parametrize(("cloud", "local", "differs"), [
    (READY, READY, False),
    ({**READY, "startTime": "t", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "x"}]},
     READY, False),
    (NOT_READY, READY, True),
    ({**READY, "phase": "Pending"}, READY, True),
    (_with(READY, ready=False), READY, True),
    (_with(READY, restartCount=1), READY, True),
    (_with(READY, state={"waiting": {"reason": "CrashLoopBackOff"}}), READY, True),
    (_with(READY, state={"running": {"startedAt": "later"}}), READY, False),
    ({}, READY, True),
    (None, {}, False),
])
def test_status_differs(cloud: dict | None, local: dict, differs: bool) -> None:
    assert status_differs(cloud, local) is differs
