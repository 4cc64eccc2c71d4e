"""Continuous queries over the real binary: a JSON source written by confluent-kafka, a
filtering and projecting materialized view read with psycopg, a sink read by a read_committed
Kafka consumer, dead letters with their error headers, and the exactly-once proof: kill -9 the
broker while a sink's pipeline is mid-stream, restart, and every expected record is in the sink
exactly once; a clean restart resumes the same way.
"""

from __future__ import annotations

import json
import time

import psycopg
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from conftest import create_topic, make_consumer, make_producer, produce_all, unique_topic


def connect(broker) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="tester", dbname="weir",
                           autocommit=True, connect_timeout=15)


def read_committed(bootstrap: str, topic: str, partitions: int, want: int,
                   timeout: float = 90.0, settle: float = 2.0, isolation="read_committed"):
    """Every record of `topic` a read_committed consumer sees: reads until at least `want`
    arrived, then `settle` seconds more, so that extra (duplicate) records would show."""
    c = make_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out = []
        deadline = time.monotonic() + timeout
        settled_at = None
        while True:
            now = time.monotonic()
            if len(out) >= want and settled_at is None:
                settled_at = now + settle
            if settled_at is not None and now > settled_at:
                return out
            assert now < deadline, f"{topic}: {len(out)} records after {timeout}s, want {want}"
            for m in c.consume(num_messages=10000, timeout=0.2):
                if m.error() is not None:
                    continue  # partition EOF and the like
                out.append(m)
    finally:
        c.close()


def wait_rows(cur, sql: str, want: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        cur.execute(sql)
        n = cur.fetchone()[0]
        if n == want:
            return
        assert time.monotonic() < deadline, f"{sql}: {n}, want {want}"
        time.sleep(0.1)


ORDERS = [{"id": i, "customer": f"c{i % 4}", "amount": i * 1.5, "paid": i % 2 == 0}
          for i in range(1, 41)]


def test_view_and_sink_filter_project_and_dead_letter(broker):
    src, out = unique_topic("orders"), unique_topic("big")
    create_topic(broker.bootstrap, src, partitions=3)
    create_topic(broker.bootstrap, out, partitions=2)
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": src, "key": str(r["id"]).encode(), "value": json.dumps(r).encode()}
                    for r in ORDERS])
    (bad,) = produce_all(p, [{"topic": src, "partition": 1, "key": b"bad", "value": b"not json",
                              "headers": [("origin", b"test")]}])
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, "
                    f"paid BOOLEAN) INCLUDE partition WITH (topic = '{src}', format = 'json')")
        cur.execute("CREATE MATERIALIZED VIEW paid AS SELECT id, upper(customer) AS customer, "
                    "amount * 2 AS doubled, CASE WHEN amount > 30 THEN 'big' ELSE 'small' END "
                    "AS size, _partition FROM orders WHERE paid")
        cur.execute(f"CREATE SINK big INTO {out} AS SELECT id, customer, "
                    f"CAST(amount AS BIGINT) AS whole FROM orders WHERE amount > 30")
        wait_rows(cur, "SELECT count(*) FROM paid", 20)
        cur.execute("SELECT id, customer, doubled, size FROM paid ORDER BY id")
        assert cur.fetchall() == [
            (r["id"], r["customer"].upper(), r["amount"] * 2, "big" if r["amount"] > 30 else "small")
            for r in ORDERS if r["paid"]]
        cur.execute("SELECT count(DISTINCT _partition) FROM paid")
        assert cur.fetchone()[0] > 1
        cur.execute("SHOW SINKS")
        assert cur.fetchall() == [("big", out, "json", "running")]
        cur.execute("SHOW MATERIALIZED VIEWS")
        assert cur.fetchall() == [("paid", "paid", "json", "running")]

    # The view's topic and the sink's, read by a Kafka client: each row once.
    view = read_committed(broker.bootstrap, "paid", 1, 20)
    assert sorted(json.loads(m.value())["id"] for m in view) == [r["id"] for r in ORDERS
                                                                 if r["paid"]]
    sink = read_committed(broker.bootstrap, out, 2, 20)
    assert sorted((json.loads(m.value()) for m in sink), key=lambda r: r["id"]) == [
        {"id": r["id"], "customer": r["customer"], "whole": int(r["amount"])}
        for r in ORDERS if r["amount"] > 30]

    # The malformed record, dead-lettered by each of the two pipelines reading the source, in
    # the source's partition, as read plus what failed and where it came from.
    dead = read_committed(broker.bootstrap, "orders.dlq", 3, 2)
    assert len(dead) == 2
    for m in dead:
        assert (m.partition(), m.key(), m.value()) == (1, b"bad", b"not json")
        headers = dict(m.headers())
        assert headers["origin"] == b"test"
        assert headers["weir.error.kind"] == b"parse"
        assert b"invalid JSON" in headers["weir.error"]
        assert headers["weir.source.topic"] == src.encode()
        assert headers["weir.source.partition"] == b"1"
        assert headers["weir.source.offset"] == str(bad[1]).encode()
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("DESCRIBE big")
        info = {name: value for name, _, _, value in cur.fetchall()}
        assert info["status"] == "running"
        assert info["records dead-lettered"] == "1"
        assert info["records written"] == "20"


def test_sink_exactly_once_across_kill9_and_clean_restart(broker_factory):
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "500"})
    src, out = unique_topic("in"), unique_topic("out")
    create_topic(broker.bootstrap, src, partitions=3)
    create_topic(broker.bootstrap, out, partitions=2)
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE ev (id BIGINT NOT NULL, tag VARCHAR) "
                    f"WITH (topic = '{src}')")
        cur.execute(f"CREATE SINK kept INTO {out} AS SELECT id, upper(tag) AS tag FROM ev "
                    f"WHERE id % 3 <> 0")

    def produce(lo: int, hi: int):
        p = make_producer(broker.bootstrap)
        produce_all(p, [{"topic": src, "key": str(i).encode(),
                         "value": json.dumps({"id": i, "tag": f"t{i % 7}"}).encode()}
                        for i in range(lo, hi)])

    def expected(hi: int):
        return sorted(i for i in range(hi) if i % 3 != 0)

    def ids(messages):
        for m in messages:
            row = json.loads(m.value())
            assert row["tag"] == f"T{row['id'] % 7}"
        return sorted(json.loads(m.value())["id"] for m in messages)

    # Committed epochs: the first part, read_committed.
    produce(0, 15000)
    assert ids(read_committed(broker.bootstrap, out, 2, len(expected(15000)))) == expected(15000)

    # A clean restart commits and stops the pipeline; it resumes where it was. This run never
    # reaches a checkpoint: the second part's output is appended in an open epoch...
    broker.settings["weir.sql.checkpoint.interval.ms"] = "600000"
    broker.restart()
    produce(15000, 30000)
    read_committed(broker.bootstrap, out, 2, len(expected(30000)), settle=0.5,
                   isolation="read_uncommitted")
    # ...when the broker is killed.
    broker.kill9()
    broker.settings["weir.sql.checkpoint.interval.ms"] = "500"
    broker.start()
    produce(30000, 40000)
    got = ids(read_committed(broker.bootstrap, out, 2, len(expected(40000))))
    assert got == expected(40000), "every record exactly once after kill -9"
    # The crashed epoch's output is in the log, aborted: a read_uncommitted reader sees it
    # twice, a read_committed one never did.
    aborted = len(expected(30000)) - len(expected(15000))
    everything = read_committed(broker.bootstrap, out, 2, len(got) + aborted,
                                isolation="read_uncommitted")
    assert len(everything) == len(got) + aborted

    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("SHOW SINKS")
        assert cur.fetchall() == [("kept", out, "json", "running")]


SALES_AGG = ("SELECT region, count(*) AS n, sum(amount) AS total, min(amount) AS lo, "
             "max(amount) AS hi, count(DISTINCT item) AS items FROM sales GROUP BY region")


def sale(i: int) -> dict:
    return {"id": i, "region": None if i % 13 == 0 else f"r{i % 7}", "item": f"i{i % 17}",
            "amount": (i * 7919) % 1000 - 100}


def expected_sales(hi: int) -> list:
    groups: dict = {}
    for i in range(hi):
        s = sale(i)
        groups.setdefault(s["region"], []).append(s)
    rows = [(r, len(g), sum(s["amount"] for s in g), min(s["amount"] for s in g),
             max(s["amount"] for s in g), len({s["item"] for s in g})) for r, g in groups.items()]
    return sorted(rows, key=lambda r: (r[0] is None, r[0] or ""))


def by_region(rows) -> list:
    return sorted((tuple(r) for r in rows), key=lambda r: (r[0] is None, r[0] or ""))


def test_aggregate_view_exactly_once_across_kill9(broker_factory):
    """An updating aggregate through psycopg: the broker is killed while the pipeline is
    mid-stream; after the restart the view (its upsert topic collapsed by key) equals the
    batch answer: state and offsets were restored from the same committed epoch."""
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    src = unique_topic("sales")
    create_topic(broker.bootstrap, src, partitions=3)
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE sales (id BIGINT NOT NULL, region VARCHAR, item VARCHAR, "
                    f"amount BIGINT) WITH (topic = '{src}')")
        cur.execute(f"CREATE MATERIALIZED VIEW by_region AS {SALES_AGG}")
        cur.execute("CREATE MATERIALIZED VIEW busy AS SELECT region, count(*) AS n FROM sales "
                    "GROUP BY region HAVING count(*) > 1500")
        cur.execute("EXPLAIN CREATE MATERIALIZED VIEW x AS " + SALES_AGG)
        graph = "\n".join(r[0] for r in cur.fetchall())
        assert "UpdatingAggregate" in graph and "updating key [region]" in graph, graph

    def produce(lo: int, hi: int):
        p = make_producer(broker.bootstrap)
        produce_all(p, [{"topic": src, "key": str(i).encode(),
                         "value": json.dumps(sale(i)).encode()} for i in range(lo, hi)])

    def wait_rows(cur, sql: str, want, timeout: float = 90.0):
        """Until `sql` answers `want` (rows ordered by `by_region`)."""
        deadline = time.monotonic() + timeout
        while True:
            cur.execute(sql)
            got = by_region(cur.fetchall())
            if got == want:
                return
            assert time.monotonic() < deadline, f"{sql}: {got} want {want}"
            time.sleep(0.2)

    def wait_view(hi: int):
        want = expected_sales(hi)
        with connect(broker) as conn, conn.cursor() as cur:
            cur.execute(SALES_AGG)
            assert by_region(cur.fetchall()) == want, "the batch answer"
            wait_rows(cur, "SELECT * FROM by_region", want)

    produce(0, 5000)
    wait_view(5000)
    # Mid-stream: the second part is being aggregated when the broker dies.
    produce(5000, 20000)
    time.sleep(0.3)
    broker.kill9()
    broker.start()
    produce(20000, 25000)
    wait_view(25000)
    with connect(broker) as conn, conn.cursor() as cur:
        # `busy` is a pipeline of its own: it may trail by_region by a checkpoint or two.
        want_busy = [(r[0], r[1]) for r in expected_sales(25000) if r[1] > 1500]
        wait_rows(cur, "SELECT region, n FROM busy", want_busy, timeout=60)
        cur.execute("SHOW MATERIALIZED VIEWS")
        assert sorted(r[3] for r in cur.fetchall()) == ["running", "running"]

    # The view's topic to a Kafka client: upserts by the JSON of the key, read_committed;
    # the last value per key is the view.
    records = read_committed(broker.bootstrap, "by_region", 1, 8, settle=1.0)
    last = {}
    for m in records:
        last[m.key()] = m.value()
    assert all(json.loads(k) == {"region": json.loads(v)["region"]}
               for k, v in last.items() if v is not None)
    rows = [json.loads(v) for v in last.values() if v is not None]
    assert by_region((r["region"], r["n"], r["total"], r["lo"], r["hi"], r["items"])
                     for r in rows) == expected_sales(25000)
