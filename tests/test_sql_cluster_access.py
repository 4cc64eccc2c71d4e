"""SQL in a cluster, partition access (design stream-sql §14 item 3): the engine reaches every
partition through `weir_broker::partition_access`, in-process where its broker leads the
partition and over the internal link to the leader elsewhere, and its transaction calls reach
the coordinator of its transactional id wherever that runs.

Three brokers, topics of replication factor 3 whose leaders are spread over the brokers: a
source over a 3-partition topic fed by confluent-kafka, a windowed materialized view and a
transactional sink into a 3-partition topic; the view (read with psycopg) and the sink (read
read_committed) equal the answer computed here from what the source topic holds. Then, while
the producer keeps writing, a broker that leads source and sink partitions (not the one
running the SQL engine) is killed with -9 and restarted: still exactly equal, no record lost
or duplicated.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from conftest import (ClusterBrokers, admin_client, create_topic, make_consumer, make_producer,
                      unique_topic)

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARTS = 3
WINDOW_S = 10


def find_sql_broker(cluster: ClusterBrokers, timeout: float = 90.0):
    """The broker whose SQL port answers a statement. Today that is the broker hosting the
    catalog's partition (the others wait for it); once every broker forwards SQL connections
    to the engine's host, the first one tried answers."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for b in cluster.nodes:
            try:
                with psycopg.connect(host="127.0.0.1", port=b.sql_port, user="tester",
                                     dbname="weir", autocommit=True, connect_timeout=3) as conn:
                    conn.execute("SHOW SOURCES").fetchall()
                    return b
            except psycopg.Error as e:
                last = e
        time.sleep(0.5)
    raise AssertionError(f"no broker answered SQL within {timeout}s: {last}\n"
                         + cluster.log_tail(40))


def connect(b, timeout: float = 60.0) -> psycopg.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(host="127.0.0.1", port=b.sql_port, user="tester",
                                   dbname="weir", autocommit=True, connect_timeout=10)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def leaders(cluster: ClusterBrokers, topic: str) -> dict[int, int]:
    """{partition: leader node id} as the metadata says."""
    md = admin_client(cluster.bootstrap).list_topics(topic, timeout=10)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def event(i: int) -> dict:
    """Bid i, 100 ms of event time after bid i-1: increasing in every partition, so no row is
    ever behind the watermark, whatever the interleaving of partitions."""
    ts = BASE + timedelta(milliseconds=i * 100)
    return {"id": i, "bidder": f"b{i % 7}", "price": (i * 37) % 101,
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")}


class Feeder(threading.Thread):
    """Produces bids in chunks until stopped, through a broker's death: idempotent, so each
    partition keeps its order across retries."""

    def __init__(self, bootstrap: str, topic: str, first: int = 0):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.sent = first
        self.failed = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            p = make_producer(self.bootstrap, **{"enable.idempotence": True,
                                                 "message.timeout.ms": 120000})

            def cb(err, _msg):
                if err is not None:
                    self.failed += 1

            while not self.stop.is_set():
                for i in range(self.sent, self.sent + 200):
                    e = event(i)
                    while True:
                        try:
                            p.produce(self.topic, key=str(i).encode(),
                                      value=json.dumps(e).encode(), on_delivery=cb)
                            break
                        except BufferError:
                            p.poll(0.05)
                self.sent += 200
                p.poll(0)
                time.sleep(0.1)
            assert p.flush(150) == 0, "records still unsent after 150 s"
        except BaseException as e:  # reported by the test
            self.error = e


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> list:
    """Every record of `topic` a read_committed consumer sees, up to the end offsets taken
    first."""
    c = make_consumer(bootstrap, **{"isolation.level": "read_committed"})
    try:
        ends = {}
        for p in range(partitions):
            _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            ends[p] = hi
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, done = [], {p for p in range(partitions) if ends[p] == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            assert time.monotonic() < deadline, f"reading {topic}: {len(out)} records, ends {ends}"
            for m in c.consume(num_messages=10000, timeout=0.3):
                if m.error() is not None:
                    continue
                if m.offset() < ends[m.partition()]:
                    out.append(m)
                if m.offset() >= ends[m.partition()] - 1:
                    done.add(m.partition())
            # Read committed stops at the last stable offset: control records end a partition
            # below its high watermark.
            for p in range(partitions):
                if p not in done:
                    pos = c.position([TopicPartition(topic, p)])[0].offset
                    if pos >= ends[p]:
                        done.add(p)
        return out
    finally:
        c.close()


def expected(bids: list[dict]):
    """The view's rows (window_start, n, total) and the sink's (id, bidder, price)."""
    windows = defaultdict(lambda: [0, 0])
    for e in bids:
        t = datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
        start = BASE + timedelta(seconds=((t - BASE).total_seconds() // WINDOW_S) * WINDOW_S)
        windows[start][0] += 1
        windows[start][1] += e["price"]
    view = sorted((s.replace(tzinfo=None), n, total) for s, (n, total) in windows.items())
    sink = sorted((e["id"], e["bidder"], e["price"]) for e in bids if e["price"] > 50)
    return view, sink


def check_exact(cluster: ClusterBrokers, sql_broker, src: str, out: str, timeout: float = 120.0):
    """The view and the sink equal the answer over the source topic's records, each sink
    record once; retried until they do (the pipelines catch up) or `timeout`."""
    bids = [json.loads(m.value()) for m in read_all(cluster.bootstrap, src, PARTS)]
    assert len({b["id"] for b in bids}) == len(bids), "the idempotent producer wrote a duplicate"
    want_view, want_sink = expected(bids)
    deadline = time.monotonic() + timeout
    got_view, got_sink = None, None
    while time.monotonic() < deadline:
        with connect(sql_broker) as conn:
            got_view = sorted(tuple(r) for r in
                              conn.execute("SELECT window_start, n, total FROM per_window"))
        got_sink = sorted((r["id"], r["bidder"], r["price"]) for r in
                          (json.loads(m.value()) for m in read_all(cluster.bootstrap, out, PARTS)))
        if got_view == want_view and len(got_sink) >= len(want_sink):
            break
        time.sleep(1)
    assert got_view == want_view, (f"view: {len(got_view or [])} rows, want {len(want_view)}; "
                                   f"first differences: "
                                   f"{[(g, w) for g, w in zip(got_view or [], want_view) if g != w][:5]}")
    assert got_sink == want_sink, (f"sink: {len(got_sink or [])} records, want {len(want_sink)} "
                                   f"(duplicates: {len(got_sink or []) - len(set(got_sink or []))})")
    return len(bids)


@pytest.fixture
def cluster(tmp_path):
    c = ClusterBrokers(tmp_path, 3, settings={"weir.sql.checkpoint.interval.ms": "300"},
                       name="sqlaccess").start()
    yield c
    c.kill_all()


def test_pipelines_over_partitions_led_elsewhere_survive_a_leader_kill9(cluster):
    sql_broker = find_sql_broker(cluster)
    host_id = cluster.nodes.index(sql_broker) + 1
    src, out = unique_topic("bids"), unique_topic("big")
    create_topic(cluster.bootstrap, src, partitions=PARTS)
    create_topic(cluster.bootstrap, out, partitions=PARTS)
    md = admin_client(cluster.bootstrap).list_topics(timeout=10)
    for t in (src, out):
        for p, pm in md.topics[t].partitions.items():
            assert len(pm.replicas) == 3, (t, p, pm.replicas)
    src_leaders, out_leaders = leaders(cluster, src), leaders(cluster, out)
    assert len(set(src_leaders.values())) > 1, f"source leaders not spread: {src_leaders}"
    elsewhere = [n for n in (1, 2, 3) if n != host_id
                 and n in set(src_leaders.values()) | set(out_leaders.values())]
    assert elsewhere, f"every partition led by the SQL broker {host_id}: {src_leaders} {out_leaders}"

    with connect(sql_broker) as conn:
        conn.execute(f"CREATE SOURCE bids (id BIGINT NOT NULL, bidder VARCHAR, price BIGINT, "
                     f"ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
                     f"WITH (topic = '{src}', watermark.idle.timeout = '60s')")
        conn.execute(f"CREATE MATERIALIZED VIEW per_window AS SELECT window_start, "
                     f"count(*) AS n, sum(price) AS total "
                     f"FROM TUMBLE(bids, ts, INTERVAL '{WINDOW_S}' SECOND) GROUP BY window_start")
        conn.execute(f"CREATE SINK big INTO {out} AS SELECT id, bidder, price FROM bids "
                     f"WHERE price > 50")

    def feed(first: int, during=None) -> Feeder:
        feeder = Feeder(cluster.bootstrap, src, first)
        feeder.start()
        try:
            time.sleep(3)
            if during is not None:
                during()
        finally:
            feeder.stop.set()
            feeder.join(180)
        assert feeder.error is None, feeder.error
        assert feeder.failed == 0, f"{feeder.failed} records not acknowledged"
        return feeder

    first = feed(0)
    assert first.sent >= 1000
    assert check_exact(cluster, sql_broker, src, out) == first.sent

    def kill_and_restart():
        # Mid-stream: kill -9 a broker leading source or sink partitions, not the SQL host.
        victim = cluster.nodes[elsewhere[0] - 1]
        victim.kill9()
        time.sleep(4)
        victim.restart()
        time.sleep(3)

    second = feed(first.sent, kill_and_restart)
    assert second.sent >= first.sent + 1000
    assert check_exact(cluster, sql_broker, src, out) == second.sent
    with connect(sql_broker) as conn:
        views = {r[0]: r[3] for r in conn.execute("SHOW MATERIALIZED VIEWS")}
        sinks = {r[0]: r[3] for r in conn.execute("SHOW SINKS")}
    assert views == {"per_window": "running"}, views
    assert sinks == {"big": "running"}, sinks


