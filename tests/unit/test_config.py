"""Settings from the environment: EDGEWORKERS_<NAME> in any case, JSON for list settings, arguments over both."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edgeworkers.config import Settings, environ_values


def test_a_variable_sets_its_field_in_any_case_and_others_are_ignored() -> None:
    fields = {"node_port": int, "node_name": str}
    environ = {"edgeworkers_node_port": "123", "EDGEWORKERS_UNKNOWN": "x", "NODE_NAME": "not ours"}
    assert environ_values(fields, environ) == {"node_port": "123"}


def test_a_list_setting_is_json_and_bad_json_names_the_variable_not_its_value() -> None:
    fields = {"admission_denied_host_paths": list[str] | None, "admission_allowed_capabilities": list[str]}
    assert environ_values(fields, {"EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS": '["/srv", "/opt"]'}) == {
        "admission_denied_host_paths": ["/srv", "/opt"]}
    with pytest.raises(ValueError, match="EDGEWORKERS_ADMISSION_ALLOWED_CAPABILITIES is not valid JSON") as caught:
        environ_values(fields, {"EDGEWORKERS_ADMISSION_ALLOWED_CAPABILITIES": "NET_ADMIN-secret"})
    assert "secret" not in str(caught.value)


def test_settings_read_the_environment_validate_it_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEWORKERS_NODE_PORT", "12345")
    monkeypatch.setenv("EDGEWORKERS_DATA_DIR", "/srv/edge")
    monkeypatch.setenv("EDGEWORKERS_NODE_NAME", "from-env")
    monkeypatch.setenv("EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK", "true")
    config = Settings(node_name="from-argument")
    assert (config.node_port, config.data_dir, config.node_name) == (12345, Path("/srv/edge"), "from-argument")
    assert config.admission_allow_host_network is True
    monkeypatch.setenv("EDGEWORKERS_NODE_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="node_port"):
        Settings()


def test_defaults_hold_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"EDGEWORKERS_{name.upper()}", raising=False)
    config = Settings()
    assert config.worker_processes == 1 and config.admission_denied_host_paths is None
    assert config.node_name  # the host's name


@pytest.mark.parametrize(("field", "value"), [
    ("service_cluster_ip_range", "10.96.0.1/12"),  # host bits set
    ("service_cluster_ip_range", "10.0.0.0/8"),  # more than 2^20 addresses, as kube refuses
    ("service_cluster_ip_range", "10.0.0.0/30"),  # fewer than 8
    ("service_node_port_range", "32767-30000"),
    ("service_node_port_range", "30000"),
])
def test_service_ranges_are_checked_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})
    assert Settings(service_cluster_ip_range="fd00::/108").service_cluster_ip_range == "fd00::/108"
