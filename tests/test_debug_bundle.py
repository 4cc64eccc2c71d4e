"""Structured logs and the debug bundle (issue 13, design §5): `weir.log.format=json` writes one
JSON object a line; `weir debug bundle` fetches the running broker's archive from its HTTP
listener, and builds the offline part from the data directory once the broker is down. Every
part is opened and checked, and a configured SASL password appears nowhere in the archive."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import create_topic as create_plain_topic
from conftest import free_port, run_weir, unique_topic
from test_security import confluent_roundtrip, create_topic, create_user_offline, Secure

pytestmark = pytest.mark.timeout(180)


def json_lines(text: str) -> list[dict]:
    """The broker's log lines as JSON objects (the harness's banner lines left out)."""
    return [json.loads(line) for line in text.splitlines()
            if line.strip() and not line.startswith("=====")]


def test_json_logs_are_one_object_a_line(broker_factory):
    b = broker_factory(settings={"weir.log.format": "json"})
    create_plain_topic(b.bootstrap, unique_topic("json"))
    lines = json_lines(b.log_path.read_text())
    assert len(lines) >= 3, lines
    for line in lines:
        assert {"timestamp", "level", "fields"} <= line.keys(), line
    messages = [line["fields"].get("message") for line in lines]
    assert "starting weir" in messages, messages
    start = next(line for line in lines if line["fields"].get("message") == "starting weir")
    assert start["level"] == "INFO"
    assert start["fields"]["listen"] == b.bootstrap


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_bundle_online_then_offline(broker_factory, tmp_path):
    password = f"pw-{uuid.uuid4().hex}"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    create_user_offline(data_dir, "alice", password)
    # A SASL listener puts the HTTP listener behind a login: the CLI gives it as HTTP Basic
    # auth with a super user's SCRAM password.
    ports = {"PLAINTEXT": free_port(), "SASL_PLAINTEXT": free_port()}
    b = broker_factory(data_dir=data_dir, port=ports["PLAINTEXT"], settings={
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "super.users": "User:alice",
        # Authorization is not what this test is about: ANONYMOUS makes the topic.
        "allow.everyone.if.no.acl.found": "true",
        "weir.log.format": "json",
        "weir.metrics.lag.interval.ms": "200",
        # Settings that carry secrets (Kafka's JAAS line, tokens) are redacted by key.
        "sasl.jaas.config": f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            f'username="alice" password="{password}";',
        "weir.test.token": password,
    })
    s = Secure(b, tmp_path, None, ports)
    topic = unique_topic("bundle")
    create_topic(s, topic)
    conf = s.confluent("PLAINTEXT")
    confluent_roundtrip(conf, topic, n=7)

    out = tmp_path / "online.tar.gz"
    p = run_weir("debug", "bundle", "--http", b.http_address, "--out", str(out),
                 "--data-dir", str(data_dir), "--gap-ms", "500",
                 "--sasl-user", "alice", "--sasl-password", password)
    assert p.stdout.strip() == str(out)
    files = members(out.read_bytes())
    parts = ["manifest.json", "config.json", "topics.json", "groups.json", "metrics-1.txt",
             "metrics-2.txt", "logs.txt", "data-dir.txt", "system.txt"]
    assert sorted(files) == sorted(f"weir-debug/{n}" for n in parts)
    f = {n: files[f"weir-debug/{n}"] for n in parts}
    for name, body in f.items():
        assert password.encode() not in body, f"the password leaked into {name}"

    manifest = json.loads(f["manifest.json"])
    assert manifest["mode"] == "online" and manifest["parts"] == parts[1:]
    config = json.loads(f["config.json"])
    assert config["listen"] == b.bootstrap
    settings = config["settings"]
    assert settings["sasl.jaas.config"] == "[redacted]"
    assert settings["weir.test.token"] == "[redacted]"
    assert settings["weir.metrics.lag.interval.ms"] == "200"
    assert "PLAINTEXT://" in settings["listeners"]

    topics = {t["name"]: t for t in json.loads(f["topics.json"])}
    assert topics[topic]["partitions"][0]["high_watermark"] == 7
    groups = json.loads(f["groups.json"])
    mine = [g for g in groups if any(c["topic"] == topic for c in g["committed"])]
    assert len(mine) == 1, groups
    assert mine[0]["committed"][0]["offset"] == 7

    for name in ("metrics-1.txt", "metrics-2.txt"):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for fam in text_string_to_metric_families(f[name].decode())
                   for s in fam.samples}
        assert samples[("weir_topic_produced_records_total", (("topic", topic),))] == 7
    assert f["metrics-2.txt"].startswith(b"# 500 ms after metrics-1.txt")

    logs = json_lines(f["logs.txt"].decode())
    assert any(line["fields"].get("message") == "starting weir" for line in logs), logs[:5]

    listing = f["data-dir.txt"].decode()
    assert f"{topic}-0/" in listing
    assert "meta/scram-credentials.json" in listing  # listed by name, never read
    system = f["system.txt"].decode()
    assert "MemTotal" in system and "Max open files" in system

    # The broker down: the CLI builds what the data directory still tells.
    b.stop()
    out = tmp_path / "offline.tar.gz"
    p = run_weir("debug", "bundle", "--http", b.http_address, "--out", str(out),
                 "--data-dir", str(data_dir), "--gap-ms", "500")
    assert "not reachable" in p.stderr
    files = members(out.read_bytes())
    assert sorted(files) == sorted(f"weir-debug/{n}" for n in
                                   ("manifest.json", "topics.json", "data-dir.txt", "system.txt"))
    for name, body in files.items():
        assert password.encode() not in body, f"the password leaked into {name}"
    assert json.loads(files["weir-debug/manifest.json"])["mode"] == "offline"
    # The broker's own topics (`__weir_sql_catalog` with the SQL engine) aside.
    names = [t["name"] for t in json.loads(files["weir-debug/topics.json"])]
    assert [n for n in names if not n.startswith("__")] == [topic], names
    assert f"{topic}-0/" in files["weir-debug/data-dir.txt"].decode()
