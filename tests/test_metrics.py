"""The HTTP listener (issue 13): /metrics checked against what real clients did, parsed with
the reference Prometheus client's parser; /readyz and /livez; the loopback default."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import (WEIR_BIN, admin_client, create_topic, free_port, make_producer,
                      port_open, produce_all, unique_topic)


def get(address: str, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET http://address/path."""
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape(broker) -> dict:
    """Every sample of /metrics as {(name, ((label, value), ...)): value}, via the parser."""
    status, ctype, text = get(broker.http_address, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for(fn, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: last seen {last}")


N = 600
M = 250


def test_counters_and_lag_match_what_the_clients_did(broker_factory):
    b = broker_factory(settings={"weir.metrics.lag.interval.ms": "200"})
    topic = create_topic(b.bootstrap, unique_topic("metrics"), partitions=3)
    first_produce = time.time()
    producer = make_producer(b.bootstrap)
    produce_all(producer, ({"topic": topic, "key": f"k{i}", "value": b"v" * (50 + i % 50)}
                           for i in range(N)))

    s = scrape(b)
    assert value(s, "weir_topic_produced_records_total", topic=topic) == N
    # Every byte produced is in the log (no retention, no compaction, no other writer).
    produced = value(s, "weir_topic_produced_bytes_total", topic=topic)
    assert produced > N * 50
    assert produced == value(s, "weir_log_size_bytes", topic=topic)
    produces = value(s, "weir_requests_total", api="Produce")
    assert produces >= 1
    assert value(s, "weir_request_duration_seconds_count", api="Produce") == produces
    assert value(s, "weir_request_duration_seconds_bucket", api="Produce", le="+Inf") == produces
    assert value(s, "weir_partitions") >= 3
    assert value(s, "weir_connections") >= 1
    assert value(s, "weir_connections_accepted_total") >= 1
    # acks=all under the default durability: the appends were fsynced.
    assert value(s, "weir_fsync_duration_seconds_count") >= 1
    assert value(s, "weir_log_dir_free_bytes") > 0
    # Per-partition series are off by default; the cluster's gauges exist in cluster mode only.
    assert not [k for k in s if k[0].startswith("weir_partition_")]
    assert value(s, "weir_under_replicated_partitions") is None

    group = unique_topic("group")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        got = 0
        nxt = {p: 0 for p in range(3)}
        deadline = time.monotonic() + 30
        while got < M:
            assert time.monotonic() < deadline, f"consumed {got} of {M}"
            for m in c.consume(num_messages=M - got, timeout=1.0):
                assert m.error() is None, m.error()
                nxt[m.partition()] = m.offset() + 1
                got += 1
        # Every partition committed (0 where nothing was read), so lag covers all of them.
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()],
                 asynchronous=False)
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        assert sum(tp.offset for tp in committed) == M

        def lag():
            s = scrape(b)
            return value(s, "weir_group_lag_records", group=group, topic=topic) == N - M, s
        s = wait_for(lag, "group lag")
        assert value(s, "weir_group_members", group=group) == 1
        assert value(s, "weir_group_rebalances_total", group=group) >= 1
        seconds = value(s, "weir_group_lag_seconds", group=group, topic=topic)
        assert 0 < seconds <= time.time() - first_produce + 1, seconds
        fetched = value(s, "weir_topic_fetched_records_total", topic=topic)
        assert fetched >= M
        assert value(s, "weir_topic_fetched_bytes_total", topic=topic) > 0
    finally:
        c.close()

    # The group is empty now; its lag stays (offsets are kept), its members drop to 0.
    wait_for(lambda: (value(scrape(b), "weir_group_members", group=group) == 0, None),
             "members after close")


def test_a_deleted_topics_series_disappear(broker_factory):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique_topic("gone"), partitions=2)
    produce_all(make_producer(b.bootstrap), ({"topic": topic, "value": b"x"} for _ in range(10)))
    _, _, text = get(b.http_address, "/metrics")
    assert f'topic="{topic}"' in text
    assert value(scrape(b), "weir_topic_produced_records_total", topic=topic) == 10
    admin = admin_client(b.bootstrap)
    admin.delete_topics([topic])[topic].result(15)
    _, _, text = get(b.http_address, "/metrics")
    assert f'topic="{topic}"' not in text


def test_topic_labels_beyond_the_cap_go_to_other(broker_factory):
    b = broker_factory(settings={"weir.metrics.max.topics": "2"})
    topics = [create_topic(b.bootstrap, unique_topic(f"cap{i}")) for i in range(4)]
    p = make_producer(b.bootstrap)
    produce_all(p, ({"topic": t, "value": b"x"} for t in topics for _ in range(5)))
    s = scrape(b)
    labelled = [t for t in topics if value(s, "weir_topic_produced_records_total", topic=t)]
    assert len(labelled) <= 2
    other = value(s, "weir_topic_produced_records_total", topic="_other")
    assert other == 5 * (len(topics) - len(labelled))
    assert value(s, "weir_metrics_label_overflow_total",
                 metric="weir_topic_produced_records_total") >= 2


def commit_offsets(bootstrap: str, group: str, offsets: list[TopicPartition]):
    """Commits `offsets` for `group` without joining it (an empty group may commit)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=offsets, asynchronous=False)
    finally:
        c.close()


def test_group_labels_beyond_the_cap_go_to_other(broker_factory):
    b = broker_factory(settings={"weir.metrics.max.groups": "1",
                                 "weir.metrics.lag.interval.ms": "200"})
    topic = create_topic(b.bootstrap, unique_topic("gcap"))
    produce_all(make_producer(b.bootstrap), ({"topic": topic, "value": b"x"} for _ in range(10)))
    groups = [unique_topic(f"gcap{i}") for i in range(3)]
    for i, g in enumerate(groups):
        commit_offsets(b.bootstrap, g, [TopicPartition(topic, 0, i + 1)])

    def folded(g):
        return sum(10 - (i + 1) for i, x in enumerate(groups) if x != g)

    def capped():
        # Until a lag pass has seen all three commits: one that ran between them shows one
        # group labelled and only the other committed one in _other.
        s = scrape(b)
        labelled = {g: value(s, "weir_group_lag_records", group=g, topic=topic) for g in groups}
        labelled = {g: v for g, v in labelled.items() if v is not None}
        other = value(s, "weir_group_lag_records", group="_other", topic=topic)
        done = len(labelled) == 1 and other == folded(next(iter(labelled)))
        return done, (labelled, other, s)
    labelled, other, s = wait_for(capped, "one group labelled, the other two in _other")
    # The labelled group's lag is its own; _other sums the groups folded into it.
    (g, lag), = labelled.items()
    assert lag == 10 - (groups.index(g) + 1)
    assert other == folded(g)
    # Each pass refuses the two groups beyond the cap again (they are not remembered).
    assert value(s, "weir_metrics_label_overflow_total", metric="weir_group_lag_records") >= 2
    assert value(s, "weir_group_members", group="_other") == 0


def test_per_partition_series_when_enabled(broker_factory):
    b = broker_factory(settings={"weir.metrics.per.partition": "true",
                                 "weir.metrics.lag.interval.ms": "200"})
    topic = create_topic(b.bootstrap, unique_topic("pp"), partitions=2)
    p = make_producer(b.bootstrap)
    produce_all(p, ({"topic": topic, "partition": i % 2 and 1 or 0, "value": b"v" * 20}
                    for i in range(14)))
    group = unique_topic("ppg")
    commit_offsets(b.bootstrap, group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 7)])

    def lagged():
        s = scrape(b)
        got = [value(s, "weir_partition_lag_records", group=group, topic=topic, partition=str(i))
               for i in range(2)]
        return got == [4, 0], (got, s)
    _, s = wait_for(lagged, "per-partition lag")
    for i in range(2):
        labels = {"topic": topic, "partition": str(i)}
        assert value(s, "weir_partition_high_watermark", **labels) == 7
        assert value(s, "weir_partition_log_end_offset", **labels) == 7
        assert value(s, "weir_partition_log_start_offset", **labels) == 0
        assert value(s, "weir_partition_size_bytes", **labels) > 7 * 20
    total = sum(value(s, "weir_partition_size_bytes", topic=topic, partition=str(i))
                for i in range(2))
    assert total == value(s, "weir_log_size_bytes", topic=topic)
    # The group's lag summed over partitions is the topic series.
    assert value(s, "weir_group_lag_records", group=group, topic=topic) == 4


def test_readyz_and_livez(broker):
    status, ctype, body = get(broker.http_address, "/readyz")
    assert status == 200, body
    assert ctype.startswith("application/json")
    assert json.loads(body) == {"ready": True, "reasons": []}
    assert get(broker.http_address, "/livez")[0] == 200


def test_the_http_listener_is_on_loopback_by_default(tmp_path):
    if port_open(9644):
        pytest.skip("something else listens on the default port 9644")
    kafka = free_port()
    log = open(tmp_path / "default.log", "w")
    proc = subprocess.Popen([WEIR_BIN, "serve", "--listen", f"127.0.0.1:{kafka}",
                             "--data-dir", str(tmp_path / "data"), "--sql-listen", ""],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def listening():
            if proc.poll() is not None:
                text = (tmp_path / "default.log").read_text()
                if "cannot listen for HTTP" in text:
                    pytest.skip("another process took port 9644 meanwhile")
                raise AssertionError(f"weir serve exited {proc.returncode}:\n{text}")
            return port_open(kafka), None
        wait_for(listening, "kafka listener", timeout=30)
        assert get("127.0.0.1:9644", "/livez")[0] == 200
        # Bound to 127.0.0.1, not to every address: another address of this host refuses it.
        others = {ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None,
                                                          socket.AF_INET)} - {"127.0.0.1"}
        others = {a for a in others if not a.startswith("127.")}
        for addr in others:
            with pytest.raises(OSError):
                socket.create_connection((addr, 9644), timeout=2).close()
        text = (tmp_path / "default.log").read_text()
        assert "127.0.0.1:9644" in text
    finally:
        proc.kill()
        proc.wait()
        log.close()
