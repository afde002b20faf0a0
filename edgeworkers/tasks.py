"""Enqueueing pod tasks by name: what the CLI, the bridge and the scheduler hand to ``pods.desired`` as its ``Send``.

Tasks are addressed by queue and actor name, so a sender needs only the broker, never the actors module (which
builds a worker's Docker runtime): lower layers and other processes stay free of it. ``actors`` declares its actors
under these same names.
"""
from __future__ import annotations

import dramatiq

from edgeworkers import constants
from edgeworkers.messages import Message, Route, Send, resource

ADD_POD, UPDATE_POD, DELETE_POD, SYNC_POD = "add_pod", "update_pod", "delete_pod", "sync_pod"
QUEUE_OF = {
    ADD_POD: constants.QUEUE_POD_ADD,
    UPDATE_POD: constants.QUEUE_POD_UPDATE,
    DELETE_POD: constants.QUEUE_POD_DELETE,
    SYNC_POD: constants.QUEUE_POD_SYNC,
}
ACTOR_OF_OPERATION = {"insert": ADD_POD, "update": UPDATE_POD, "delete": DELETE_POD}


def task(actor_name: str, key: str, message: Message | dict) -> dramatiq.Message:
    """The Dramatiq message of a pod task: ``(key, message)`` for ``actor_name``, the message without its content
    (the worker reads the pod from the desired state; a copy in the queue would only cost Redis memory)."""
    body = message.to_dict() if isinstance(message, Message) else message
    body = {part: value for part, value in body.items() if part != "content"}
    return dramatiq.Message(
        queue_name=QUEUE_OF[actor_name], actor_name=actor_name, args=(key, body), kwargs={}, options={}
    )


def sender(broker: dramatiq.Broker) -> Send:
    """A ``Send`` that enqueues the task for a message (insert/update/delete) on ``broker``'s pod queues."""

    def send(message: Message) -> None:
        broker.enqueue(task(ACTOR_OF_OPERATION[message.route.operation], message.key, message))

    return send


def send_sync(broker: dramatiq.Broker, key: str, message: Message | dict, delay_ms: int = 0) -> None:
    """Enqueue ``sync_pod`` of ``key`` after ``delay_ms``."""
    broker.enqueue(task(SYNC_POD, key, message), delay=delay_ms or None)


def sync_message(key: str, source: str) -> dict:
    """The message of a ``sync_pod`` that no change of the pod caused (the PLEG's events, a pull it waited for ...):
    the worker reconciles to the desired state anyway."""
    namespace, name = key.split("/", 1)
    return Message(route=Route(source=source, resource=resource(namespace, "pod", name), operation="update")).to_dict()
