"""The agent core's stress tests against the lite mode: the same tests as tests/integration/queue/test_queue_chaos.py,
whose worker is here one `edgeworkers agent` process (``start_worker`` of this package's conftest), its scheduler's
PLEG syncing pods beside the tasks: 200 random operations over 20 pods end with exactly the desired containers, and an
agent SIGKILLed half-way through an add leaves the pod running once, after the redelivery."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "queue"))  # the queue tests import their helpers as `queuekit`

from tests.integration.queue.test_queue_chaos import (  # noqa: E402
    test_200_random_operations_over_20_pods_end_with_exactly_the_desired_containers as test_lite_200_random_operations,
)
from tests.integration.queue.test_queue_chaos import (  # noqa: E402
    test_a_worker_killed_mid_add_leaves_the_pod_running_once as test_lite_agent_killed_mid_add_leaves_the_pod_running_once,
)

__all__ = ["test_lite_200_random_operations", "test_lite_agent_killed_mid_add_leaves_the_pod_running_once"]
