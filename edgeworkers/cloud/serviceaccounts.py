"""The service account controller: every namespace has its ``default`` ServiceAccount.

As kube-controller-manager's serviceaccounts controller: a namespace gets its ``default`` ServiceAccount when it is
created (clients such as kubectl wait for it before they create pods), and one deleted comes back, but not in a
namespace being deleted. Service account tokens are not issued. ``with_account_pull_secrets`` is the
ServiceAccount admission plugin's part a node needs: a pod gets its account's image pull secrets.

Unlike kube's, it reacts to each event as the watch hub publishes it, inside the request that made it: a namespace
is answered to its creator with its account already there, and a namespace's deletion (one transaction here) never
sees its account come back half-way.
"""
from __future__ import annotations

from collections.abc import Callable

from edgeworkers.cloud.authorizer import MIRROR_ANNOTATION
from edgeworkers.cloud.store import ADDED, DELETED, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.serviceaccount import DEFAULT


class ServiceAccounts:
    """``terminating(namespace)`` says whether a namespace's deletion is under way (its accounts must stay gone)."""

    def __init__(self, store: Store, hub: Hub, terminating: Callable[[str], bool]) -> None:
        self._store, self._hub, self._terminating = store, hub, terminating
        hub.add_listener(self._on_event)

    def sync(self) -> None:
        """Make the accounts missing from any namespace (at start: those of namespaces made before this controller
        ran, or deleted while the server was down)."""
        for namespace in self._store.list("namespaces"):
            self.ensure(namespace["metadata"]["name"])

    def ensure(self, namespace: str) -> None:
        """``namespace``'s ``default`` ServiceAccount, made when the namespace exists and the account does not."""
        if self._store.find("namespaces", "", namespace) is not None and \
                self._store.find("serviceaccounts", namespace, DEFAULT) is None:
            self._hub.publish(self._store.create("serviceaccounts", {
                "metadata": {"name": DEFAULT, "namespace": namespace}}))

    def _on_event(self, event: Event) -> None:
        meta = event.object["metadata"]
        if event.resource == "namespaces" and event.type == ADDED:
            self.ensure(meta["name"])
        elif event.resource == "serviceaccounts" and event.type == DELETED and meta["name"] == DEFAULT and \
                not self._terminating(meta["namespace"]):
            self.ensure(meta["namespace"])  # as kube's controller: it comes back


def with_account_pull_secrets(store: Store, pod: dict) -> dict:
    """kube's ServiceAccount admission, its image pull secrets half: a new pod naming no ``imagePullSecrets`` gets
    those of its service account (``default`` when it names none); a mirror pod, or an account missing, none."""
    spec, meta = pod.get("spec"), pod.get("metadata") or {}
    if not isinstance(spec, dict) or spec.get("imagePullSecrets") or MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return pod
    account = store.find("serviceaccounts", meta.get("namespace") or "", spec.get("serviceAccountName") or DEFAULT)
    secrets = (account or {}).get("imagePullSecrets")
    if secrets:
        spec["imagePullSecrets"] = [{"name": ref.get("name")} for ref in secrets if isinstance(ref, dict)]
    return pod
