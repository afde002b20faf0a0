"""Pulls with the pod's image pull secrets (pods.images with k8s.keyring) on FakeRuntime: the matching credential
pulls, each matching one is tried in turn, a missing secret is an event, and no credential reaches a message."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.k8s.keyring import DOCKER_CONFIG_JSON
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0, container, make_pod
from tests.unit.volumes.sources import FakeSources

PRIVATE = "127.0.0.1:5000/team/app:1"
PASSWORD = "s3cret-pa55"


def docker_config(auths: dict) -> dict[str, bytes]:
    return {".dockerconfigjson": json.dumps({"auths": auths}).encode()}


@pytest.fixture
def runtime() -> FakeRuntime:
    runtime = FakeRuntime(node_name="n1", clock=Clock(T0), images=["edgeworkers/pause:latest"])
    runtime.add_to_registry(PRIVATE, login=("bob", PASSWORD))
    return runtime


@pytest.fixture
def sources() -> FakeSources:
    return FakeSources(secrets={
        "regcred": docker_config({"127.0.0.1:5000": {"username": "bob", "password": PASSWORD}}),
        "stale": docker_config({"127.0.0.1:5000/team": {"username": "bob", "password": "old-one"}}),
        "elsewhere": docker_config({"registry.example.com": {"username": "eve", "password": "nope"}}),
    }, types=dict.fromkeys(("regcred", "stale", "elsewhere"), DOCKER_CONFIG_JSON))


@pytest.fixture
def events() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def syncer(runtime: FakeRuntime, sources: FakeSources, events: list, tmp_path: Path) -> PodSyncer:
    return PodSyncer(runtime, MemoryBackoffStore(), Settings(node_name="n1", data_dir=tmp_path), Clock(T0),
                     meta=sources, events=lambda _pod, reason, message, kind: events.append((reason, message, kind)))


def app_state(syncer: PodSyncer, *secrets: str) -> dict:
    pod = make_pod(containers=[container("app", image=PRIVATE)],
                   imagePullSecrets=[{"name": name} for name in secrets])
    return syncer.sync(pod.key, pod).status["containerStatuses"][0]["state"]


def test_the_matching_pull_secret_pulls_a_private_image(syncer, runtime, events) -> None:
    assert "running" in app_state(syncer, "elsewhere", "regcred")
    assert runtime.pull_registries == ["127.0.0.1:5000"]  # the other registry's credential is not offered
    assert ("Pulled", f'Successfully pulled image "{PRIVATE}"', "Normal") in events


def test_each_matching_credential_is_tried_in_turn_the_most_specific_first(syncer, runtime) -> None:
    assert "running" in app_state(syncer, "regcred", "stale")
    assert runtime.pull_registries == ["127.0.0.1:5000/team", "127.0.0.1:5000"]


def test_without_a_pull_secret_the_pull_fails_with_the_registrys_cause(syncer, runtime, events) -> None:
    state = app_state(syncer, "elsewhere")
    assert state["waiting"] == {"reason": "ErrImagePull",
                                "message": f"pulling {PRIVATE}: unauthorized: authentication required"}
    assert runtime.pull_registries == [None]


def test_a_missing_pull_secret_is_an_event_and_the_pull_goes_on_without_it(syncer, runtime, events) -> None:
    assert app_state(syncer, "absent")["waiting"]["reason"] == "ErrImagePull"
    assert ("FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (absent); attempting to "
            "pull the image may not succeed.", "Warning") in events
    assert runtime.pull_registries == [None]


def test_no_credential_reaches_a_status_an_event_or_a_log(syncer, events, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    state = app_state(syncer, "stale")  # a wrong password: every credential fails
    text = json.dumps(state) + json.dumps(events) + caplog.text
    assert state["waiting"]["reason"] == "ErrImagePull"
    assert "old-one" not in text and PASSWORD not in text
