"""DML and DDL an experienced user reaches for first, through psql and psycopg against the
real binary: DELETE and UPDATE of a table (its topic receives tombstones and upserts under
the JSON key INSERT writes, read back by confluent-kafka read_committed), a view over the
table following the changes, parameters through psycopg's extended protocol, SHOW CREATE,
and all of it after kill -9.
"""

from __future__ import annotations

import json
import subprocess
import time

from conftest import create_topic, make_consumer, unique_topic
from test_sql_joins import psql
from test_sql_tables import connect


def command(broker, sql: str) -> str:
    """psql's output of one statement, command tag included."""
    dsn = f"postgresql://psql@127.0.0.1:{broker.sql_port}/weir"
    out = subprocess.run(["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def wait_rows(broker, sql: str, want, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = psql(broker, sql)
        except AssertionError:  # the SQL listener not up yet after a restart
            got = None
        if got == want:
            return
        assert time.monotonic() < deadline, (sql, got, want)
        time.sleep(0.2)


def changelog(broker, topic: str, partitions: int) -> list[tuple[bytes, bytes | None]]:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    c = make_consumer(broker.bootstrap, **{"isolation.level": "read_committed",
                                           "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, eof = [], set()
        deadline = time.monotonic() + 30
        while len(eof) < partitions and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                if m.error() is None:
                    out.append((m.key(), m.value()))
                elif m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
        assert len(eof) == partitions, eof
        return out
    finally:
        c.close()


def test_delete_and_update_of_a_table_through_psql_and_psycopg(broker):
    topic = unique_topic("users")
    create_topic(broker.bootstrap, topic, partitions=2)
    psql(broker, "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR, visits BIGINT) "
                 f"WITH (topic = '{topic}', format = 'json')")
    psql(broker, "INSERT INTO users VALUES (1, 'ann', 1), (2, 'bob', 2), (3, 'cy', 3)")
    psql(broker, "CREATE MATERIALIZED VIEW per_name AS "
                 "SELECT name, sum(visits) AS v FROM users GROUP BY name")
    wait_rows(broker, "SELECT * FROM per_name", [["ann", "1"], ["bob", "2"], ["cy", "3"]])

    assert command(broker, "DELETE FROM users WHERE id = 2") == "DELETE 1"
    assert command(broker, "UPDATE users SET visits = visits + 10 WHERE name = 'ann'") \
        == "UPDATE 1"
    assert psql(broker, "SELECT * FROM users") == [["1", "ann", "11"], ["3", "cy", "3"]]
    wait_rows(broker, "SELECT * FROM per_name", [["ann", "11"], ["cy", "3"]])

    # Parameters, through the extended protocol; rowcount from the command tag.
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (3,))
        assert cur.rowcount == 1
        cur.execute("UPDATE users SET name = %s WHERE id = %s", ("anne", 1))
        assert cur.rowcount == 1
        cur.execute("SELECT * FROM users")
        assert cur.fetchall() == [(1, "anne", 11)]
    wait_rows(broker, "SELECT * FROM per_name", [["anne", "11"]])

    # The topic is the changelog a Kafka client reads: tombstones and upserts by key.
    records = changelog(broker, topic, 2)
    last = {}
    for k, v in records:
        last[k] = v
    assert last[b'{"id":2}'] is None and last[b'{"id":3}'] is None
    assert json.loads(last[b'{"id":1}']) == {"id": 1, "name": "anne", "visits": 11}

    shown = psql(broker, "SHOW CREATE TABLE users")
    assert shown[0][0] == "users" and "PRIMARY KEY" in shown[0][1], shown
    shown = psql(broker, "SHOW CREATE MATERIALIZED VIEW per_name")
    assert "GROUP BY name" in shown[0][1], shown

    # After kill -9: the table and the view as they were.
    broker.kill9()
    broker.start()
    wait_rows(broker, "SELECT * FROM users", [["1", "anne", "11"]])
    wait_rows(broker, "SELECT * FROM per_name", [["anne", "11"]])
    psql(broker, "INSERT INTO users VALUES (2, 'bob', 5)")
    wait_rows(broker, "SELECT * FROM per_name", [["anne", "11"], ["bob", "5"]])
