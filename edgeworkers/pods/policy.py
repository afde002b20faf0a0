"""What one sync must do to bring a pod's containers to its spec: kubelet's computePodActions, trimmed.

Pure decisions over plain data (the pod, the runtime's containers of its key, the time, back-off state),
so every rule is tested from a table. ``sync.PodSyncer`` carries the actions out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import ALWAYS, NEVER, ON_FAILURE, Pod
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.pods.backoff import BackoffEntry, BackoffStore
from edgeworkers.pods.convert import container_hash, sandbox_hash
from edgeworkers.runtime.types import Container, ContainerState

CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
# How soon to look again while an init container runs (until the PLEG reports its exit).
INIT_POLL_S = 1.0


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether an exited container is started again (kubelet's ShouldContainerBeRestarted)."""
    if restart_policy == ALWAYS:
        return True
    if restart_policy == ON_FAILURE:
        return exit_code != 0
    return False


@dataclass(frozen=True)
class BackoffPolicy:
    """Kubernetes' CrashLoopBackOff: ``initial_s`` doubling to ``max_s``; reset by ``reset_s`` of running."""

    initial_s: float = 10.0
    max_s: float = 300.0
    reset_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BackoffPolicy:
        return cls(settings.backoff_initial_s, settings.backoff_max_s, settings.backoff_reset_s)


def backoff_delay(previous_s: float | None, ran_for_s: float, policy: BackoffPolicy) -> float:
    """The back-off that applies after this restart (flowcontrol.Backoff.Next): initial at first, or
    after a run of ``reset_s`` or more; else double the previous one, capped at ``max_s``."""
    if previous_s is None or ran_for_s >= policy.reset_s:
        return policy.initial_s
    return min(previous_s * 2, policy.max_s)


def backoff_remaining(
    entry: BackoffEntry | None, failed_at: float, ran_for_s: float, now: float, policy: BackoffPolicy
) -> float:
    """Seconds before a container that failed at ``failed_at`` may restart (0: now). The first restart
    is immediate, as kubelet's; a run of ``reset_s`` or more forgives the past."""
    if entry is None or ran_for_s >= policy.reset_s:
        return 0.0
    return max(0.0, failed_at + entry.delay - now)


def go_duration(seconds: float) -> str:
    """Seconds as Go prints a time.Duration: ``10s``, ``1m20s``, ``5m0s``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class StartAction:
    """Start container ``name``: the never-started instance ``reuse`` if given, else a new one."""

    name: str
    restart_count: int
    is_init: bool = False
    reuse: Container | None = None
    is_ephemeral: bool = False


@dataclass
class PodActions:
    """What a sync does, in this order: stop, remove, (re)create the sandbox, start."""

    stop: list[Container] = field(default_factory=list)  # stop, keep as history (restart counts, lastState)
    remove: list[Container] = field(default_factory=list)  # stop and remove
    create_sandbox: bool = False
    start: list[StartAction] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (reason, message)
    backoff: dict[str, BackoffEntry] = field(default_factory=dict)  # record once that container starts
    requeue_after: float | None = None

    def look_again(self, seconds: float) -> None:
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


def _ts(moment: datetime | None, default: float) -> float:
    return moment.timestamp() if moment else default


def _live(container: Container) -> bool:
    return container.state in (ContainerState.RUNNING, ContainerState.CREATED, ContainerState.UNKNOWN)


def _exited(container: Container) -> bool:
    return container.state == ContainerState.EXITED


def _succeeded(container: Container | None) -> bool:
    return container is not None and _exited(container) and container.exit_code == 0


def latest_instances(containers: list[Container]) -> tuple[dict[str, Container], list[Container]]:
    """Each container name's latest instance, and the instances to remove: live duplicates, and dead
    ones beyond the last (kubelet keeps one dead instance per container, MaxPerPodContainer=1)."""
    by_name: dict[str, list[Container]] = defaultdict(list)
    for container in containers:
        by_name[container.name].append(container)
    latest: dict[str, Container] = {}
    extra: list[Container] = []
    for name, instances in by_name.items():
        newest, *older = sorted(instances, key=Container.instance_order, reverse=True)
        latest[name] = newest
        extra += [c for c in older if _live(c)]
        dead = [c for c in older if not _live(c)]
        extra += dead if _exited(newest) else dead[1:]
    return latest, extra


class _Planner:
    """One computePodActions run; a class only to share its inputs between the steps."""

    def __init__(self, pod: Pod, now: float, backoff: BackoffStore, policy: BackoffPolicy) -> None:
        self.pod = pod
        self.uid = pod.metadata.uid or ""
        self.restart_policy = pod.spec.restart_policy or ALWAYS
        self.now = now
        self.store = backoff
        self.policy = policy
        self.actions = PodActions()
        self.failed = False  # an init container failed under restartPolicy Never

    def next_count(self, latest: Container | None) -> int:
        return 0 if latest is None else latest.restart_count + 1

    def start_fresh(self, spec: SpecContainer, latest: Container | None, is_init: bool) -> None:
        """Start ``spec``: reuse a created-never-started instance of the same spec, replace one of another."""
        if latest is not None and latest.state == ContainerState.CREATED:
            if latest.spec_hash == container_hash(spec):
                self.actions.start.append(StartAction(spec.name, latest.restart_count, is_init, reuse=latest))
                return
            self.actions.remove.append(latest)
            self.actions.start.append(StartAction(spec.name, latest.restart_count, is_init))
            return
        self.actions.start.append(StartAction(spec.name, self.next_count(latest), is_init))

    def restart_with_backoff(self, spec: SpecContainer, exited: Container, is_init: bool) -> None:
        """Restart an exited container unless it is in CrashLoopBackOff."""
        failed_at = _ts(exited.finished_at, self.now)
        ran_for = max(0.0, failed_at - _ts(exited.started_at, failed_at))
        entry = self.store.get(self.uid, spec.name)
        remaining = backoff_remaining(entry, failed_at, ran_for, self.now, self.policy)
        if remaining > 0:
            assert entry is not None
            pod = f"{self.pod.metadata.name}_{self.pod.metadata.namespace}({self.uid})"
            message = f"back-off {go_duration(entry.delay)} restarting failed container={spec.name} pod={pod}"
            self.actions.waiting[spec.name] = (CRASH_LOOP_BACK_OFF, message)
            self.actions.look_again(remaining)
            return
        delay = backoff_delay(entry.delay if entry else None, ran_for, self.policy)
        self.actions.backoff[spec.name] = BackoffEntry(delay=delay, since=failed_at)
        self.actions.start.append(StartAction(spec.name, exited.restart_count + 1, is_init))

    def init_done(self, latest: dict[str, Container], sandbox: Container) -> bool:
        """Drive the init containers, one at a time in order; True once all of them succeeded in this
        sandbox (a new sandbox runs them all again)."""
        for spec in self.pod.spec.init_containers or []:
            instance = latest.get(spec.name)
            if _succeeded(instance) and _ts(instance.created_at, 0.0) >= _ts(sandbox.created_at, 0.0):
                continue
            if instance is None or instance.state == ContainerState.CREATED or _succeeded(instance):
                self.start_fresh(spec, instance, is_init=True)
                self.actions.look_again(INIT_POLL_S)
            elif _exited(instance):
                if self.restart_policy == NEVER:
                    self.failed = True
                else:
                    self.restart_with_backoff(spec, instance, is_init=True)
                    if self.actions.start:
                        self.actions.look_again(INIT_POLL_S)
            else:
                self.actions.look_again(INIT_POLL_S)  # running: wait for it to finish
            return False
        return True

    def sync_apps(self, latest: dict[str, Container]) -> None:
        for spec in self.pod.spec.containers:
            instance = latest.get(spec.name)
            if instance is None or instance.state == ContainerState.CREATED:
                self.start_fresh(spec, instance, is_init=False)
            elif instance.state == ContainerState.RUNNING:
                if instance.spec_hash != container_hash(spec):
                    self.actions.stop.append(instance)
                    self.actions.start.append(StartAction(spec.name, instance.restart_count + 1))
            elif _exited(instance) and should_restart(self.restart_policy, instance.exit_code or 0):
                self.restart_with_backoff(spec, instance, is_init=False)

    def start_ephemeral(self, debug: dict[str, Container]) -> None:
        """Start each ephemeral container never started (kube's EphemeralContainersToStart): one that ran, or runs, is
        never started again; a created, never started one is started, unless the sandbox is new."""
        for spec in self.pod.spec.ephemeral_containers or []:
            instance = debug.get(spec.name)
            if instance is None:
                self.actions.start.append(StartAction(spec.name, 0, is_ephemeral=True))
            elif instance.state == ContainerState.CREATED and not self.actions.create_sandbox:
                self.actions.start.append(StartAction(spec.name, instance.restart_count, reuse=instance,
                                                      is_ephemeral=True))

    def pod_done(self, latest: dict[str, Container]) -> bool:
        """Nothing runs, nothing is to start or waits to restart: the pod Succeeded or Failed."""
        apps = [latest.get(spec.name) for spec in self.pod.spec.containers]
        return not self.actions.start and not self.actions.waiting and not any(c is not None and _live(c) for c in apps)

    def recreate_sandbox(self, sandbox: Container | None, latest: dict[str, Container]) -> None:
        """The sandbox is missing, dead or changed: stop everything and start the pod over, unless the
        pod already ran and its restart policy keeps it down (Never, or OnFailure with every app done)."""
        self.actions.stop += [c for c in latest.values() if c.state == ContainerState.RUNNING]
        ran_before = sandbox is not None or bool(latest)
        apps = [
            spec for spec in self.pod.spec.containers
            if not (ran_before and self.restart_policy == ON_FAILURE and _succeeded(latest.get(spec.name)))
        ]  # fmt: skip
        if ran_before and (self.restart_policy == NEVER or not apps):
            if sandbox is not None and sandbox.state == ContainerState.RUNNING:
                self.actions.stop.append(sandbox)  # changed: the pod is killed, not started again
            return
        if sandbox is not None:
            self.actions.remove.append(sandbox)
        self.actions.create_sandbox = True
        inits = self.pod.spec.init_containers or []
        if inits:
            self.actions.start.append(StartAction(inits[0].name, self.next_count(latest.get(inits[0].name)), True))
            self.actions.look_again(INIT_POLL_S)
            return
        for spec in apps:
            instance = latest.get(spec.name)
            if instance is not None and _exited(instance):
                self.restart_with_backoff(spec, instance, is_init=False)
            else:
                self.actions.start.append(StartAction(spec.name, self.next_count(instance)))


def compute_pod_actions(
    pod: Pod,
    containers: list[Container],
    now: float,
    backoff: BackoffStore,
    policy: BackoffPolicy = BackoffPolicy(),
) -> PodActions:
    """Decide what to do with ``containers`` (the runtime's containers of the pod's key, any uid).

    Containers of another uid (the pod was replaced) are removed; a missing, dead or changed sandbox
    restarts the whole pod; init containers run one at a time to completion, in order; then app containers
    are created when absent, recreated when their spec hash changed, and restarted per the restart policy
    with back-off. A pod that is done has its sandbox stopped.
    """
    planner = _Planner(pod, now, backoff, policy)
    actions = planner.actions
    uid = planner.uid
    actions.remove += [c for c in containers if c.pod.uid != uid]
    ours = [c for c in containers if c.pod.uid == uid]
    sandboxes = sorted((c for c in ours if c.is_sandbox), key=Container.instance_order)
    actions.remove += sandboxes[:-1]
    sandbox = sandboxes[-1] if sandboxes else None

    wanted = {spec.name: True for spec in pod.spec.init_containers or []}
    wanted.update({spec.name: False for spec in pod.spec.containers})
    workload = [c for c in ours if not c.is_sandbox and not c.is_ephemeral]
    known = [c for c in workload if wanted.get(c.name) == c.is_init]
    actions.remove += [c for c in workload if wanted.get(c.name) != c.is_init]
    latest, extra = latest_instances(known)
    actions.remove += extra
    ephemeral = {spec.name for spec in pod.spec.ephemeral_containers or []}
    actions.remove += [c for c in ours if c.is_ephemeral and c.name not in ephemeral]
    debug, extra = latest_instances([c for c in ours if c.is_ephemeral and c.name in ephemeral])
    actions.remove += extra
    debugging = [c for c in debug.values() if c.state == ContainerState.RUNNING]

    if sandbox is None or sandbox.state != ContainerState.RUNNING or sandbox.spec_hash != sandbox_hash(pod):
        actions.stop += debugging  # not started again in the new sandbox: an ephemeral container runs once
        planner.recreate_sandbox(sandbox, latest)
        if actions.create_sandbox:
            planner.start_ephemeral(debug)  # after the first containers: a target runs by then
        return actions
    done = planner.init_done(latest, sandbox)
    if done or not planner.failed:
        planner.start_ephemeral(debug)  # also while init containers run, as kubelet does
    if not done:
        if planner.failed:  # the pod is Failed: stop all of it
            actions.stop += [c for c in [*latest.values(), *debugging, sandbox] if c.state == ContainerState.RUNNING]
        return actions
    planner.sync_apps(latest)
    if planner.pod_done(latest):
        actions.stop += [*debugging, sandbox]
    return actions
