"""Configuration: YAML plus CITYHUB_* variables, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_hub_settings
from hub.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "influx:\n  url: http://influx:8086\n  db: fromfile\nmqtt:\n  client_id: a\n")
    monkeypatch.setenv("CITYHUB_MQTT_URL", "mqtts://user:p%40ss@broker.example:8883")
    monkeypatch.setenv("CITYHUB_INFLUX_DB", "fromenv")
    monkeypatch.setenv("CITYHUB_INGEST_FLUSH_INTERVAL_S", "0.25")
    settings = load_hub_settings(path)
    assert settings.mqtt.url == "mqtts://user:p%40ss@broker.example:8883"
    assert settings.mqtt.client_id == "a"
    assert settings.influx.url == "http://influx:8086"
    assert settings.influx.db == "fromenv"
    assert settings.ingest.flush_interval_s == 0.25


def test_v2_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"URL": "http://i:8086", "API": "v2", "TOKEN": "t", "ORG": "cjt", "BUCKET": "b"}.items():
        monkeypatch.setenv(f"CITYHUB_INFLUX_{name}", value)
    influx = load_hub_settings(None).influx
    assert (influx.api, influx.token, influx.org, influx.bucket) == ("v2", "t", "cjt", "b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mqtt: [1, 2]\n", "hub.yaml: mqtt: Input should be a valid dictionary"),
        ("mqtt:\n  url: http://x\n", "hub.yaml: mqtt.url: Value error, MQTT URL 'http://x': scheme must be"),
        ("mqtt:\n  topic_root: a/#\n", "hub.yaml: mqtt.topic_root: Value error, invalid topic root"),
        ("mqtt:\n  protocol: 4\n  shared_group: g\n", "shared_group needs MQTT protocol 5"),
        ("ingest:\n  batch_max_messages: 5000\n", "must be at least ingest.batch_max_messages"),
        ("influx:\n  url: http://x\n  api: v2\n", "api v2 needs token, org, bucket"),
        ("ingest:\n  flush_intervall_s: 1\n", "hub.yaml: ingest.flush_intervall_s: Extra inputs are not permitted"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("mqtt: {url: [\n", "not valid YAML"),
    ],
)
def test_invalid_files_are_refused_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_hub_settings(write(tmp_path, text))
    assert message in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_hub_settings(tmp_path / "nope.yaml")


def test_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_INGEST_FLUSH_INTERVAL_S", "soon")
    with pytest.raises(ConfigError, match=r"CITYHUB_INGEST_FLUSH_INTERVAL_S.*ingest\.flush_interval_s"):
        load_hub_settings(None)
