"""Image pulls, apart from the pod lock: the pull policy, the per-image pull back-off, and pulls made before a task
takes its pod's lock.

kubelet pulls inside the pod worker, but its image puller pulls for every pod apart: a slow pull on a poor link
holds no pod. So a pod task first pulls (``prefetch``) the images of the containers its sync is about to create,
without the pod's lock; a delete of that pod meanwhile runs at once. Each pull holds a short, renewed Redis lock on
the image's name: two pods needing one image pull it once. The lock never parks a worker thread: a task whose image
another task is pulling leaves its pod's containers waiting on ``ContainerCreating``, notes its pod among the image's
waiters, and returns; the puller wakes the waiters (``wake``, a sync of each) when its pull ends, and each also looks
again after a back-off period in case that wake-up is lost (a killed puller). A waiter then finds the image pulled
within ``FRESH_S``, or the pull's back-off. The sync, under the pod's lock, finds the image present, or the outcome
of this task's pull (``ensure``), and reports ``ErrImagePull``, ``ImagePullBackOff`` or ``ErrImageNeverPull`` as before. The events
are kubelet's: ``Pulling`` as a pull starts, ``Pulled`` when it succeeded (or the image was present), ``Failed`` when
it failed with no local copy, ``BackOff`` while its back-off lasts.

No registry may be reachable at the edge: under ``Always`` a failed pull falls back to a local copy (and is not tried
again before its back-off expires).

Private registries: a pull uses the pod's ``imagePullSecrets`` (``kubernetes.io/dockerconfigjson`` and the legacy
``kubernetes.io/dockercfg``), through the MetaClient, as kubelet's keyring does (``k8s.keyring``): every credential
whose registry location matches the image is tried in turn, the most specific first, until one pulls; with none
matching the pull goes without credentials. A secret the node cannot have is a ``FailedToRetrieveImagePullSecret``
event, and the pull goes on without it. Messages and logs name secrets and registries, never a credential.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import redis
from redis.exceptions import LockError

from edgeworkers import constants
from edgeworkers.k8s.keyring import KeyringError, RegistryAuth, lookup, secret_entries
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.backoff import PULL_SCOPE, BackoffEntry, BackoffStore, pull_key
from edgeworkers.pods.policy import BackoffPolicy, backoff_delay
from edgeworkers.runtime.errors import ImagePullError
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.volumes.builders import SECRET, Sources, fetch
from edgeworkers.volumes.errors import ConfigSourceError

log = logging.getLogger(__name__)

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
CONTAINER_CREATING = "ContainerCreating"
LOCK_LEASE_S = 15.0  # renewed while the pull runs: a killed worker's lock clears within this
FRESH_S = 60.0  # an image pulled this recently is not pulled again for another pod (pull policy Always)
WAITERS_TTL_S = 4 * LOCK_LEASE_S  # a pod noted as waiting for a pull: renewed by each of its looks while it waits

# An event about a pod: (pod, reason, message, type), as events.EventRecorder records it.
Note = Callable[[Pod, str, str, str], None]
# Why a container waits for its image: (reason, message, look again after seconds).
Waiting = tuple[str, str, float]


@dataclass(frozen=True)
class Pulled:
    """The outcome of one pull attempt: ``error`` (and the back-off ``delay`` it started) when it failed; ``elsewhere``
    when another task is pulling the image (nothing was tried)."""

    error: str | None = None
    delay: float = 0.0
    elsewhere: bool = False


PULLING_ELSEWHERE = Pulled(elsewhere=True)


class ImagePuller:
    """Pulls images per pull policy and back-off; ``client`` None: no cross-task lock (tests, a single process);
    ``wake``: syncs a pod (by key) that waited for a pull of another task, once that pull ended."""

    def __init__(
        self, runtime: Runtime, backoff: BackoffStore, policy: BackoffPolicy, clock: Callable[[], float],
        note: Note, client: redis.Redis | None = None, secrets: Sources | None = None,
        wake: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self._runtime = runtime
        self._secrets = secrets  # where pull secrets come from (the MetaClient); None: pulls go without credentials
        self._backoff = backoff
        self._policy = policy
        self._clock = clock
        self._note = note
        self._redis = client
        self._wake = wake

    def prefetch(self, pod: Pod, specs: list[SpecContainer]) -> dict[str, Pulled]:
        """Pull the images of ``specs`` that their policy and back-off want pulled now (no pod lock is held); the
        outcomes by image, for ``ensure``."""
        outcomes: dict[str, Pulled] = {}
        for spec in specs:
            image = spec.image or ""
            if image in outcomes or not self._wants_pull(image, spec.pull_policy, self._runtime.image_present(image)):
                continue
            outcome = self._pull(pod, image)
            if outcome is not None:
                outcomes[image] = outcome
        return outcomes

    def ensure(self, pod: Pod, spec: SpecContainer, pulled: dict[str, Pulled]) -> tuple[bool, Waiting | None]:
        """Whether the container's image is present now, after this task's ``pulled`` outcomes (or a pull here when
        there is none), and why the container waits when it is not."""
        image, policy = spec.image or "", spec.pull_policy
        outcome = pulled.get(image)
        if outcome is not None and outcome.elsewhere:
            outcome = None  # another task was pulling the image: that pull may be over now
        if outcome is not None and outcome.error is None:
            return True, None  # pulled for this sync, as its events said
        present = self._runtime.image_present(image)
        if policy == "Never" or (present and policy == "IfNotPresent"):
            if present:
                self._note(pod, "Pulled", f'Container image "{image}" already present on machine', "Normal")
                return True, None
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._note(pod, ERR_IMAGE_NEVER_PULL, message, "Warning")
            return False, (ERR_IMAGE_NEVER_PULL, message, self._policy.initial_s)
        if outcome is None and self._backing_off(image) is None:
            outcome = self._pull(pod, image)  # not pulled before the lock (a container the prefetch did not foresee)
        if outcome is not None and outcome.elsewhere:  # wait for it, without a thread: woken, or look again later
            return False, (CONTAINER_CREATING, "", self._policy.initial_s)
        if outcome is None:  # backing off
            if present:
                return True, None
            message = f'Back-off pulling image "{image}"'
            self._note(pod, "BackOff", message, "Normal")
            return False, (IMAGE_PULL_BACK_OFF, message, self._backing_off(image) or self._policy.initial_s)
        if outcome.error is None:
            return True, None
        if present:
            log.info("pod %s: pulling %s failed, using the local image: %s", pod.key, image, outcome.error)
            return True, None
        self._note(pod, "Failed", f'Failed to pull image "{image}": {outcome.error}', "Warning")
        return False, (ERR_IMAGE_PULL, outcome.error, outcome.delay)

    # --- internals -----------------------------------------------------------------------------

    def _wants_pull(self, image: str, policy: str, present: bool) -> bool:
        return (policy == "Always" or (policy == "IfNotPresent" and not present)) and self._backing_off(image) is None

    def _backing_off(self, image: str) -> float | None:
        """Seconds left of the image's pull back-off; None when a pull may be tried now."""
        entry = self._backoff.get(PULL_SCOPE, pull_key(image))
        remaining = entry.remaining(self._clock()) if entry is not None else 0.0
        return remaining or None

    def _pull(self, pod: Pod, image: str) -> Pulled | None:
        """Pull ``image`` under its lock, unless another task pulled it meanwhile (success), its pull failed meanwhile
        (None: backing off), or another task is pulling it now (``PULLING_ELSEWHERE``: this pod is woken after)."""
        with self._image_lock(image) as held:
            if not held:
                self._await_pull(pod, image)
            if self._pulled_lately(image) and self._runtime.image_present(image):
                self._note(pod, "Pulled", f'Container image "{image}" already present on machine', "Normal")
                return Pulled()
            if self._backing_off(image) is not None:
                return None
            if not held:
                return PULLING_ELSEWHERE
            try:
                return self._pull_now(pod, image)
            finally:
                self._wake_waiters(image)

    def _pull_now(self, pod: Pod, image: str) -> Pulled:
        entry = self._backoff.get(PULL_SCOPE, pull_key(image))
        self._note(pod, "Pulling", f'Pulling image "{image}"', "Normal")
        error = self._pull_with_credentials(pod, image)
        if error is not None:
            delay = backoff_delay(entry.delay if entry else None, 0.0, self._policy)
            self._backoff.put(PULL_SCOPE, pull_key(image), BackoffEntry(delay=delay, since=self._clock()))
            return Pulled(error, delay)
        self._note(pod, "Pulled", f'Successfully pulled image "{image}"', "Normal")
        if entry is not None:
            self._backoff.delete(PULL_SCOPE, pull_key(image))
        if self._redis is not None:
            self._redis.set(f"{constants.KEY_IMAGE_PULLED}:{image}", 1, px=int(FRESH_S * 1000))
        return Pulled()

    def _await_pull(self, pod: Pod, image: str) -> None:
        """Note ``pod`` among the waiters of ``image``, before looking at the pull's outcome: a pull that ends after the
        look wakes it."""
        if self._redis is None or self._wake is None:
            return
        key = f"{constants.KEY_IMAGE_WAITERS}:{image}"
        pipe = self._redis.pipeline()
        pipe.sadd(key, pod.key)
        pipe.expire(key, int(WAITERS_TTL_S))
        pipe.execute()

    def _wake_waiters(self, image: str) -> None:
        """Sync the pods that waited for this pull; a lost wake-up costs them only a later look."""
        if self._redis is None or self._wake is None:
            return
        key = f"{constants.KEY_IMAGE_WAITERS}:{image}"
        try:
            pipe = self._redis.pipeline()
            pipe.smembers(key)
            pipe.delete(key)
            waiters, _ = pipe.execute()
            for waiter in sorted(member.decode() for member in waiters):
                self._wake(waiter)
        except Exception:  # the puller's own outcome matters more: its waiters look again after their back-off
            log.warning("the pods waiting for image %s were not woken", image, exc_info=True)

    def _pull_with_credentials(self, pod: Pod, image: str) -> str | None:
        """Pull with each matching credential in turn until one succeeds (kubelet's ``PullImage``); None on success,
        else the errors, as Go's ``NewAggregate`` prints them."""
        errors = []
        for auth in lookup(self._pull_credentials(pod), image) or [None]:
            try:
                self._runtime.pull_image(image, auth)
                return None
            except ImagePullError as exc:
                errors.append(str(exc))
        return errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"

    def _pull_credentials(self, pod: Pod) -> list[RegistryAuth]:
        """The registry credentials of the pod's pull secrets; those the node cannot have are named in a
        ``FailedToRetrieveImagePullSecret`` event (kubelet's ``getPullSecretsForPod``)."""
        credentials: list[RegistryAuth] = []
        failed = []
        for ref in pod.spec.image_pull_secrets or []:
            name = (ref or {}).get("name") if isinstance(ref, dict) else None
            if not name or self._secrets is None:
                continue
            try:
                secret = fetch(self._secrets, SECRET, pod.metadata.namespace or "default", name, optional=False)
                credentials += secret_entries(secret or {})
            except (ConfigSourceError, KeyringError) as exc:
                log.info("pod %s: unable to retrieve pull secret %s, the image pull may not succeed: %s",
                         pod.key, name, exc)
                failed.append(name)
        if failed:
            self._note(pod, "FailedToRetrieveImagePullSecret", f"Unable to retrieve some image pull secrets "
                       f"({', '.join(failed)}); attempting to pull the image may not succeed.", "Warning")
        return credentials

    def _pulled_lately(self, image: str) -> bool:
        return self._redis is not None and bool(self._redis.exists(f"{constants.KEY_IMAGE_PULLED}:{image}"))

    def _image_lock(self, image: str):
        return nullcontext(True) if self._redis is None else image_lock(self._redis, image)


@contextmanager
def image_lock(client: redis.Redis, image: str, lease_s: float = LOCK_LEASE_S) -> Iterator[bool]:
    """Hold the pull lock of ``image`` for the block if it is free (True), never waiting for it (False: another task
    holds it); the lease is renewed while the block runs, so a pull may take longer than it."""
    lock = client.lock(f"{constants.KEY_IMAGE_LOCK}:{image}", timeout=lease_s, thread_local=False)
    if not lock.acquire(blocking=False):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                lock.reacquire()
            except (LockError, redis.RedisError) as exc:  # lost: at worst another task pulls the image too
                log.warning("pull lock of image %s not renewed: %s", image, exc)

    renewer = threading.Thread(target=renew, name="image-lock", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except (LockError, redis.RedisError):
            log.warning("pull lock of image %s was lost before release", image)
