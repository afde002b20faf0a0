"""Container GC selection from a table, after the cases of kubelet's own TestContainerGC; then the runner."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edgeworkers.gc.containers import ContainerGC, ContainerGCPolicy, select_containers
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import Container, ContainerConfig, ContainerID, ContainerState, PodRef, SandboxConfig

NOW = 10_000.0
R, E, C = ContainerState.RUNNING, ContainerState.EXITED, ContainerState.CREATED


def c(ident: str, pod: str, name: str, state: ContainerState, created: float, *, sandbox=False, init=False,
      ephemeral=False):
    """A container; ``pod`` is its uid (and name), ``created`` seconds before NOW."""
    return Container(ContainerID("docker", ident), PodRef(pod, "default", pod), name, "busybox", "sha256:b", state,
                     is_sandbox=sandbox, is_init=init, is_ephemeral=ephemeral,
                     created_at=datetime.fromtimestamp(NOW - created, UTC))  # fmt: skip


CASES = [
    # (case, containers, desired pods, policy (min_age, per container, max), removed ids)
    ("running containers are never removed", [c("1", "p", "app", R, 100), c("2", "p", "app", R, 200)], {"p"},
     (0, 0, 0), []),
    ("one dead instance is kept per container by default",
     [c("1", "p", "app", E, 300), c("2", "p", "app", E, 200), c("3", "p", "app", E, 100), c("4", "p", "app", R, 50)],
     {"p"}, (0, 1, -1), ["1", "2"]),
    ("no limits: nothing is removed", [c("1", "p", "app", E, 300), c("2", "p", "app", E, 200)], {"p"},
     (0, -1, -1), []),
    ("MaxPerPodContainer 0 removes every dead one", [c("1", "p", "app", E, 300), c("2", "p", "app", E, 200)], {"p"},
     (0, 0, -1), ["1", "2"]),
    ("younger than MinAge is never removed", [c("1", "p", "app", E, 300), c("2", "p", "app", E, 30),
                                               c("3", "p", "app", E, 10)], {"p"}, (60, 0, -1), ["1"]),
    ("units are kept apart", [c("1", "p", "a", E, 300), c("2", "p", "b", E, 200), c("3", "q", "a", E, 100)],
     {"p", "q"}, (0, 1, -1), []),
    ("MaxContainers: each unit cut to its fair share first",
     [c("1", "p", "a", E, 600), c("2", "p", "a", E, 500), c("3", "p", "a", E, 400),
      c("4", "q", "a", E, 300), c("5", "q", "a", E, 200), c("6", "q", "a", E, 100)],
     {"p", "q"}, (0, -1, 4), ["1", "4"]),
    ("MaxContainers below the number of units: one each, then the oldest across units",
     [c("1", "p", "a", E, 600), c("2", "p", "a", E, 500), c("3", "q", "a", E, 300), c("4", "q", "a", E, 200)],
     {"p", "q"}, (0, -1, 1), ["1", "3", "2"]),
    ("dead containers of deleted pods go first, all of them, sandboxes too",
     [c("1", "gone", "app", E, 100), c("2", "gone", "POD", E, 200, sandbox=True), c("3", "gone", "app", R, 50),
      c("4", "p", "app", E, 10)], {"p"}, (0, -1, -1), ["2", "1"]),
    ("a desired pod's dead sandbox is the sync's business", [c("1", "p", "POD", E, 100, sandbox=True)], {"p"},
     (0, 0, 0), []),
    ("a desired pod's latest init container is kept (it says the init succeeded)",
     [c("1", "p", "init", E, 300, init=True), c("2", "p", "init", E, 200, init=True)], {"p"}, (0, 0, -1), ["1"]),
    ("a desired pod's ephemeral container that ran is kept (it is never started again)",
     [c("1", "p", "debugger", E, 300, ephemeral=True)], {"p"}, (0, 0, 0), []),
    ("created (not yet started) containers are not dead", [c("1", "p", "app", C, 300)], {"p"}, (0, 0, 0), []),
    ("a replaced pod's containers (another uid) are a deleted pod's", [c("1", "old", "app", E, 300)], {"new"},
     (0, -1, -1), ["1"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "containers", "desired", "policy", "removed"), CASES, ids=[c[0] for c in CASES])
def test_container_gc_selection(case, containers, desired, policy, removed) -> None:
    chosen = select_containers(containers, desired, NOW, ContainerGCPolicy(*policy))
    assert [x.id.id for x in chosen] == removed


def test_the_runner_removes_what_it_selects_and_goes_on_after_a_refusal() -> None:
    runtime = FakeRuntime("node")
    pod = PodRef("p", "default", "p")
    sandbox = runtime.create_sandbox(SandboxConfig(pod))
    ids = []
    for count in range(3):
        ident = runtime.create_container(sandbox, pod, ContainerConfig("app", "busybox", restart_count=count))
        runtime.start_container(ident)
        runtime.exit(ident, 1)
        ids.append(ident)
    gc = ContainerGC(runtime, lambda: {"p"}, ContainerGCPolicy(max_per_pod_container=1))
    removed = gc.collect()
    assert sorted(x.id.id for x in removed) == sorted(i.id for i in ids[:2])
    assert {x.id for x in runtime.list_containers() if x.name == "app"} == {ids[2]}
