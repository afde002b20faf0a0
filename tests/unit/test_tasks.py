"""tasks: pod tasks enqueued by queue and actor name."""
from __future__ import annotations

from dataclasses import dataclass, field

import dramatiq
import pytest

from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD
from edgeworkers.tasks import sender
from tests.unit.pods.test_reconcile import pod


@dataclass
class RecordingBroker:
    messages: list[dramatiq.Message] = field(default_factory=list)

    def enqueue(self, message: dramatiq.Message) -> dramatiq.Message:
        self.messages.append(message)
        return message


@pytest.mark.parametrize(
    ("operation", "actor", "queue"),
    [("insert", "add_pod", "pod_add"), ("update", "update_pod", "pod_update"), ("delete", "delete_pod", "pod_delete")],
)
def test_sender_routes_each_operation_to_its_queue_with_key_and_message_header(operation, actor, queue):
    broker = RecordingBroker()
    message = Message.for_object(POD, pod(), operation, source="file")
    sender(broker)(message)
    [task] = broker.messages
    assert (task.queue_name, task.actor_name) == (queue, actor)
    # The key, the header and the route: never the pod (the worker reads the desired state).
    assert task.args == ("default/web", {"header": message.to_dict()["header"], "route": message.to_dict()["route"]})


