"""Tables over the real binary: a compacted topic written by confluent-kafka (records keyed by
the JSON object of the primary key, updates, tombstones) declared with CREATE TABLE and read
with psycopg: SELECT shows the last row per key without deleted ones, an aggregate view over
the table follows updates and deletes, Weir's own INSERT upserts the same rows, and the table
and the view's state survive a clean restart and a kill -9.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import psycopg

from conftest import create_topic, make_producer, produce_all, unique_topic


def connect(broker, timeout: float = 30.0) -> psycopg.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="tester",
                                   dbname="weir", autocommit=True, connect_timeout=15)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def key(user_id: int) -> bytes:
    """The record key of a user: the JSON object of the primary key, as INSERT writes it."""
    return json.dumps({"id": user_id}, separators=(",", ":")).encode()


def changes(topic: str, model: dict, start: int, end: int) -> list[dict]:
    """Messages `start..end`: upserts of ids 0..11 (updating earlier ones), every fourth a
    tombstone; applied to `model` (id -> (name, plan))."""
    out = []
    for i in range(start, end):
        uid = (i * 5) % 12
        if i % 4 == 3:
            out.append({"topic": topic, "key": key(uid), "value": None})
            model.pop(uid, None)
        else:
            row = {"id": uid, "name": f"user{i}", "plan": ["free", "pro", "team"][i % 3]}
            out.append({"topic": topic, "key": key(uid), "value": json.dumps(row).encode()})
            model[uid] = (row["name"], row["plan"])
    return out


def wait_equal(cur, sql: str, want, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        cur.execute(sql)
        got = cur.fetchall()
        if got == want:
            return
        assert time.monotonic() < deadline, f"{sql}:\n got  {got}\n want {want}"
        time.sleep(0.1)


def check(cur, model: dict):
    rows = sorted((uid, name, plan) for uid, (name, plan) in model.items())
    assert rows, "an empty table would prove nothing"
    cur.execute("SELECT id, name, plan FROM users ORDER BY id")
    assert cur.fetchall() == rows
    counts = Counter(plan for _, (_, plan) in model.items())
    wait_equal(cur, "SELECT plan, n FROM per_plan ORDER BY plan", sorted(counts.items()))


def test_table_over_a_compacted_topic_upserts_deletes_and_survives_restarts(broker):
    topic = unique_topic("users")
    create_topic(broker.bootstrap, topic, partitions=3, config={"cleanup.policy": "compact"})
    # Java's (murmur2) partitioner, as Weir's INSERT: a key's records stay in one partition.
    p = make_producer(broker.bootstrap, partitioner="murmur2_random")
    model: dict = {}
    produce_all(p, changes(topic, model, 0, 30))
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE users (id BIGINT, name VARCHAR, plan VARCHAR, "
                    f"PRIMARY KEY (id)) WITH (topic = '{topic}', format = 'json')")
        cur.execute("CREATE MATERIALIZED VIEW per_plan AS "
                    "SELECT plan, count(*) AS n FROM users GROUP BY plan")
        check(cur, model)
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == [("users", topic, "json", "ready")]
        cur.execute("DESCRIBE users")
        info = {name: value for name, _, _, value in cur.fetchall()}
        assert info["kind"] == "table" and info["primary key"] == "id"
        # Updates and deletes of rows the view has counted.
        produce_all(p, changes(topic, model, 30, 60))
        check(cur, model)
        # Weir's INSERT upserts the same rows (same record keys).
        cur.execute("INSERT INTO users VALUES (100, 'new', 'team'), (1, 'renamed', 'free')")
        model[100] = ("new", "team")
        model[1] = ("renamed", "free")
        check(cur, model)

    broker.restart()
    produce_all(p, changes(topic, model, 60, 80))
    with connect(broker) as conn, conn.cursor() as cur:
        check(cur, model)

    broker.kill9()
    broker.start()
    produce_all(p, changes(topic, model, 80, 100))
    with connect(broker) as conn, conn.cursor() as cur:
        check(cur, model)
        cur.execute("DROP MATERIALIZED VIEW per_plan")
        cur.execute("DROP TABLE users")
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == []
