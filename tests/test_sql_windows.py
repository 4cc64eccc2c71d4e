"""Windows over the real binary: a JSON source with a watermark fed by confluent-kafka over
three partitions, TUMBLE and HOP views read with psycopg against the batch answer (computed
here, in Python), and the exactly-once proof for a window view that emits on window close:
kill -9 the broker mid-stream, restart, and every closed window is in the view exactly once.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import psycopg

from conftest import create_topic, make_producer, produce_all, unique_topic

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DELAY = 5  # seconds: the watermark delay declared below
PARTITIONS = 3


def connect(broker) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="tester", dbname="weir",
                           autocommit=True, connect_timeout=15)


def event(i: int, rng: random.Random) -> dict:
    """Bid i: one every 100 ms of event time, up to 4 s early (disorder within the delay)."""
    ms = i * 100 + 4000 - rng.randrange(0, 4000)
    return {"id": i, "bidder": f"b{i % 5}", "price": (i * 13) % 97,
            "ts": (BASE + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")}


def source_sql(topic: str) -> str:
    return ("CREATE SOURCE bids (id BIGINT NOT NULL, bidder VARCHAR, price BIGINT, ts TIMESTAMP, "
            f"WATERMARK FOR ts AS ts - INTERVAL '{DELAY}' SECOND) "
            f"WITH (topic = '{topic}', watermark.idle.timeout = '60s')")


def produce(broker, topic: str, events: list[dict]):
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": topic, "key": str(e["id"]).encode(),
                     "value": json.dumps(e).encode()} for e in events])


def close_everything(broker, topic: str, at: datetime):
    """A far-future row on every partition: the watermark passes every earlier window."""
    p = make_producer(broker.bootstrap)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S")
    produce_all(p, [{"topic": topic, "partition": part,
                     "value": json.dumps({"id": 10**6 + part, "bidder": "zz", "price": 0,
                                          "ts": stamp}).encode()}
                    for part in range(PARTITIONS)])


def parse_ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def tumble_expected(events: list[dict], size_s: int, closed_before: datetime | None):
    """(window_start, count, sum) per tumbling window, as the view's SQL defines them."""
    acc = defaultdict(lambda: [0, 0])
    for e in events:
        t = parse_ts(e["ts"])
        start = BASE + timedelta(seconds=((t - BASE).total_seconds() // size_s) * size_s)
        if closed_before is not None and start + timedelta(seconds=size_s) > closed_before:
            continue
        acc[start][0] += 1
        acc[start][1] += e["price"]
    return sorted((s.replace(tzinfo=None), n, total) for s, (n, total) in acc.items())


def wait_equal(broker, sql: str, want, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    with connect(broker) as conn, conn.cursor() as cur:
        while True:
            cur.execute(sql)
            got = sorted(tuple(r) for r in cur.fetchall())
            if got == want:
                return
            assert time.monotonic() < deadline, f"{sql}:\n got  {got[:10]}...\n want {want[:10]}..."
            time.sleep(0.2)


def test_tumble_and_hop_views_over_a_produced_topic(broker_factory):
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    topic = unique_topic("bids")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    rng = random.Random(12)
    events = [event(i, rng) for i in range(3000)]
    tumble = ("SELECT window_start, count(*) AS n, sum(price) AS total "
              "FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start")
    hop = ("SELECT window_start, window_end, bidder, max(price) AS top "
           "FROM HOP(bids, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) "
           "GROUP BY window_start, window_end, bidder")
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(source_sql(topic))
        cur.execute(f"CREATE MATERIALIZED VIEW closed AS {tumble} EMIT ON WINDOW CLOSE")
        cur.execute(f"CREATE MATERIALIZED VIEW live AS {hop}")
    produce(broker, topic, events)
    # The updating HOP view shows every window as rows arrive: it equals the batch query.
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(hop)
        want_hop = sorted(tuple(r) for r in cur.fetchall())
    assert len(want_hop) > 200  # 315 (window, bidder) groups from this seed
    wait_equal(broker, "SELECT * FROM live", want_hop)

    end = BASE + timedelta(hours=1)
    close_everything(broker, topic, end)
    want = tumble_expected(events, 10, end - timedelta(seconds=DELAY))
    assert len(want) == 31  # 0 .. 304 s of event time in 10 s windows
    wait_equal(broker, "SELECT * FROM closed", want)
    with connect(broker) as conn, conn.cursor() as cur:
        # The batch engine agrees with the Python answer.
        cur.execute(f"SELECT * FROM ({tumble}) AS q WHERE window_start < TIMESTAMP "
                    "'2026-01-01 00:30:00'")
        assert sorted(tuple(r) for r in cur.fetchall()) == want
        cur.execute("DESCRIBE closed")
        info = {r[0]: r[3] for r in cur.fetchall()}
        assert info["rows late (dropped)"] == "0", info
        held = int(info["state bytes"].split()[0])
        # One open window (the far-future one), a single group.
        assert 0 < held < 2000, info


def test_window_view_exactly_once_across_kill9(broker_factory):
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    topic = unique_topic("bids")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    rng = random.Random(34)
    events = [event(i, rng) for i in range(20000)]
    tumble = ("SELECT window_start, count(*) AS n, sum(price) AS total "
              "FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start")
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(source_sql(topic))
        cur.execute(f"CREATE MATERIALIZED VIEW closed AS {tumble} EMIT ON WINDOW CLOSE")
    produce(broker, topic, events[:5000])
    # Mid-stream: the rest is being aggregated when the broker dies.
    produce(broker, topic, events[5000:15000])
    time.sleep(0.4)
    broker.kill9()
    broker.start()
    produce(broker, topic, events[15000:])
    end = BASE + timedelta(hours=2)
    close_everything(broker, topic, end)
    want = tumble_expected(events, 10, end - timedelta(seconds=DELAY))
    assert len(want) == 201
    # Append-only: a window emitted twice (a replay not fenced) would show as two rows.
    wait_equal(broker, "SELECT * FROM closed", want, timeout=120.0)
    time.sleep(1.0)
    wait_equal(broker, "SELECT * FROM closed", want, timeout=5.0)
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("SHOW MATERIALIZED VIEWS")
        assert [r[3] for r in cur.fetchall()] == ["running"]


def test_an_idle_partition_does_not_stall_windows(broker_factory):
    """Partition 2 never receives a record: after watermark.idle.timeout it leaves the
    minimum, so windows still close on the records of partitions 0 and 1."""
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    topic = unique_topic("bids")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    rng = random.Random(56)
    events = [event(i, rng) for i in range(1000)]
    tumble = ("SELECT window_start, count(*) AS n, sum(price) AS total "
              "FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start")
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(source_sql(topic).replace("'60s'", "'1s'"))
        cur.execute(f"CREATE MATERIALIZED VIEW closed AS {tumble} EMIT ON WINDOW CLOSE")
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": topic, "partition": e["id"] % 2,
                     "value": json.dumps(e).encode()} for e in events])
    last = max(parse_ts(e["ts"]) for e in events)
    # Every window that ends before the last event time minus the delay closes, though one
    # partition is empty (the two others deliver in order within the delay).
    closes = min(max(parse_ts(e["ts"]) for e in events if e["id"] % 2 == part)
                 for part in range(2)) - timedelta(seconds=DELAY)
    want = tumble_expected(events, 10, closes)
    assert 0 < len(want) and last > closes
    wait_equal(broker, "SELECT * FROM closed", want, timeout=60.0)


def test_late_rows_are_counted_and_dead_lettered_never_silently_lost(broker):
    """Through psql: a row behind the watermark already sent is dropped by the pipeline with
    a window (counted in DESCRIBE and /metrics, its record in the source's dead-letter topic
    with `weir.error.kind = late`) and kept by the aggregate without one, like the batch."""
    import urllib.request

    from conftest import make_consumer
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    from test_sql_joins import psql

    topic = unique_topic("bids")
    create_topic(broker.bootstrap, topic, partitions=1)
    psql(broker, source_sql(topic))
    psql(broker, "CREATE MATERIALIZED VIEW closed AS SELECT window_start, count(*) AS n "
                 "FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start "
                 "EMIT ON WINDOW CLOSE")
    psql(broker, "CREATE MATERIALIZED VIEW per_bidder AS SELECT bidder, count(*) AS n "
                 "FROM bids GROUP BY bidder")
    on_time = [{"id": i, "bidder": f"b{i % 5}", "price": i,
                "ts": (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")}
               for i in range(60)]
    produce(broker, topic, on_time)
    # The watermark reaches 55 s: windows up to 50 s close.
    deadline = time.monotonic() + 60
    while len(psql(broker, "SELECT * FROM closed")) < 5:
        assert time.monotonic() < deadline, psql(broker, "DESCRIBE closed")
        time.sleep(0.2)
    late = {"id": 999, "bidder": "b9", "price": 1,
            "ts": (BASE + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")}
    produce(broker, topic, [late])

    def info(name):
        return {r[0]: r[3] for r in psql(broker, f"DESCRIBE {name}")}

    deadline = time.monotonic() + 60
    while info("closed")["rows late (dropped)"] != "1":
        assert time.monotonic() < deadline, info("closed")
        time.sleep(0.2)
    assert info("closed")["rows late (dead-lettered)"] == "1"
    # The aggregate without a window counts it, as the batch query does.
    want = psql(broker, "SELECT bidder, count(*) FROM bids GROUP BY bidder")
    assert ["b9", "1"] in want
    deadline = time.monotonic() + 60
    while psql(broker, "SELECT * FROM per_bidder") != want:
        assert time.monotonic() < deadline, psql(broker, "SELECT * FROM per_bidder")
        time.sleep(0.2)
    assert info("per_bidder")["rows late (dropped)"] == "0"
    assert psql(broker, "SELECT * FROM closed")[0] == ["2026-01-01 00:00:00", "10"]

    # Its record, as produced, in the dead-letter topic, once, read_committed.
    c = make_consumer(broker.bootstrap, **{"isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition("bids.dlq", 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(got) < 2:
            got += [m for m in c.consume(num_messages=100, timeout=0.5) if m.error() is None]
    finally:
        c.close()
    assert len(got) == 1, [m.value() for m in got]
    headers = dict(got[0].headers())
    assert json.loads(got[0].value()) == late
    assert headers["weir.error.kind"] == b"late"
    assert b"behind the watermark" in headers["weir.error"]
    assert headers["weir.source.offset"] == b"60"

    with urllib.request.urlopen(f"http://{broker.http_address}/metrics", timeout=15) as r:
        metrics = r.read().decode()
    assert 'weir_sql_pipeline_late_rows_total{pipeline="closed",kind="view"} 1\n' in metrics
    assert 'weir_sql_pipeline_late_rows_total{pipeline="per_bidder",kind="view"} 0\n' in metrics


def test_the_late_row_count_survives_kill9(broker_factory):
    """The late-row counts of DESCRIBE and /metrics are checkpointed with the epoch: after
    kill -9 and a restart they go on from where they were (psql)."""
    import urllib.request

    from test_sql_joins import psql
    from test_sql_ddl import wait_rows

    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    topic = unique_topic("bids")
    create_topic(broker.bootstrap, topic, partitions=1)
    psql(broker, source_sql(topic))
    psql(broker, "CREATE MATERIALIZED VIEW closed AS SELECT window_start, count(*) AS n "
                 "FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start "
                 "EMIT ON WINDOW CLOSE")
    produce(broker, topic, [{"id": i, "bidder": "b", "price": i,
                             "ts": (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")}
                            for i in range(60)])

    def late(i: int) -> dict:
        return {"id": 1000 + i, "bidder": "late", "price": 1,
                "ts": (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")}

    def counts():
        info = {r[0]: r[3] for r in psql(broker, "DESCRIBE closed")}
        return info.get("rows late (dropped)"), info.get("rows late (dead-lettered)")

    wait_rows(broker, "SELECT count(*) FROM closed", [["5"]])
    produce(broker, topic, [late(1), late(2)])
    deadline = time.monotonic() + 60
    while counts() != ("2", "2"):
        assert time.monotonic() < deadline, counts()
        time.sleep(0.2)
    time.sleep(1.5)  # a few checkpoints: the counts are committed
    broker.kill9()
    broker.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            got = counts()
        except AssertionError:  # the SQL listener not up yet
            got = None
        if got == ("2", "2"):
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.2)
    produce(broker, topic, [late(3)])
    deadline = time.monotonic() + 60
    while counts() != ("3", "3"):
        assert time.monotonic() < deadline, counts()
        time.sleep(0.2)
    with urllib.request.urlopen(f"http://{broker.http_address}/metrics", timeout=15) as r:
        metrics = r.read().decode()
    assert 'weir_sql_pipeline_late_rows_total{pipeline="closed",kind="view"} 3\n' in metrics
    # The windows themselves were emitted once each.
    wait_rows(broker, "SELECT count(*) FROM closed", [["5"]])
