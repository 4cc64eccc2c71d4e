"""Sources over the real binary, written by confluent-kafka and read with psycopg: what each
`INCLUDE` metadata column holds, and what each source format decodes or dead-letters.

- Metadata columns (`INCLUDE key | partition | offset | timestamp | headers AS alias`): the
  record key (BYTEA, a null key NULL, an empty key empty), partition, offset, the producer's
  explicit timestamp (TIMESTAMPTZ, millisecond exact) and the headers (a list of
  `struct<key varchar, value bytea>`, in order, a null header value NULL) equal what the
  producer sent and the delivery reports said, through an ad-hoc SELECT, through a materialized
  view (a continuous pipeline, also for a record produced after it started) and in the view's
  topic as a Kafka client reads it (key base64, timestamp RFC 3339). Repeated header keys are
  kept, in order, by the pipeline and by an ad-hoc SELECT.
- `format = 'csv'` with `csv.delimiter`: typed columns, RFC 4180 quoting, an empty unquoted
  field NULL and a quoted one '', a short line's missing fields NULL; `format = 'text'`: the
  whole value as the column `value`, a null value NULL. A filtering view and a counting view
  over each; the lines that do not decode (an unparsable number, too many fields, NULL in a
  NOT NULL column, bytes that are not UTF-8) are skipped by SELECT and go to `<source>.dlq`,
  once per pipeline, with their key, value, timestamp and headers and the `weir.*` error
  headers, in the source's partition.
- JSON dead letters of each kind (`type`: a string for BIGINT; `not_null`: a NOT NULL field
  missing or explicitly null; `parse`: not JSON) go to `dead_letter = '<name>'` instead of
  `<source>.dlq`; with `dead_letter = 'none'` they are only counted; DESCRIBE of the views
  counts them ("records dead-lettered").
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_LOG_APPEND_TIME, TopicPartition

from conftest import (create_topic, make_consumer, make_producer, produce_all,
                      topic_partition_counts, unique_topic)
from test_sql_pipelines import connect, read_committed


def at(ms: int) -> datetime:
    """A Kafka timestamp (epoch milliseconds) as the TIMESTAMPTZ psycopg returns."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def wait_equal(cur, sql: str, want, timeout: float = 30.0):
    """Until `sql` answers `want` (a list of row tuples)."""
    deadline = time.monotonic() + timeout
    while True:
        cur.execute(sql)
        got = cur.fetchall()
        if got == want:
            return
        assert time.monotonic() < deadline, f"{sql}:\n got  {got}\n want {want}"
        time.sleep(0.2)


def describe(cur, name: str) -> dict:
    """DESCRIBE's name/value lines (columns excluded)."""
    cur.execute(f"DESCRIBE {name}")
    return {r[0]: r[3] for r in cur.fetchall() if r[1] is None}


def wait_described(cur, name: str, want: dict, timeout: float = 30.0) -> dict:
    """Until DESCRIBE `name` shows every line of `want`."""
    deadline = time.monotonic() + timeout
    while True:
        info = describe(cur, name)
        if all(info.get(k) == v for k, v in want.items()):
            return info
        assert time.monotonic() < deadline, f"DESCRIBE {name}: {info}, want {want}"
        time.sleep(0.2)


def column_types(cur, name: str) -> dict:
    cur.execute(f"DESCRIBE {name}")
    return {r[0]: r[1] for r in cur.fetchall() if r[1] is not None}


def headers_of(cell) -> list:
    """`_headers` as psycopg returns it (a text[] of one JSON object per header) as
    [(key, value bytes or None)]."""
    out = []
    for item in cell:
        h = json.loads(item)
        out.append((h["key"], None if h["value"] is None else base64.b64decode(h["value"])))
    return out


def dead_letters_by_source(messages) -> dict:
    """{(source partition, source offset): [dead-letter messages]}."""
    out: dict = {}
    for m in messages:
        h = dict(m.headers())
        where = (int(h["weir.source.partition"]), int(h["weir.source.offset"]))
        out.setdefault(where, []).append(m)
    return out


# ---------------------------------------------------------------------------------------------
# 1. Metadata columns.

META_SQL = ("CREATE SOURCE {name} (id BIGINT NOT NULL) INCLUDE key AS k INCLUDE partition AS part "
            "INCLUDE offset AS off INCLUDE timestamp AS ts INCLUDE headers AS hdrs "
            "WITH (topic = '{topic}', format = 'json')")

META_RECORDS = [
    {"id": 1, "partition": 1, "key": b"k\x00\xff", "timestamp": 1_700_000_000_123,
     "headers": [("trace", b"abc"), ("bin", b"\x00\x01\xfe"), ("empty", None)]},
    {"id": 2, "partition": 0, "key": None, "timestamp": 1_600_000_000_000, "headers": []},
    {"id": 3, "partition": 1, "key": b"user-3", "timestamp": 1_700_000_000_456,
     "headers": [("trace", b"xyz")]},
    {"id": 4, "partition": 0, "key": b"", "timestamp": 1_234_567_890_001,
     "headers": [("only", b"")]},
]


def produce_meta(broker, topic: str, records: list) -> list:
    """Produces `records` with their explicit partition, key, timestamp and headers; returns
    them with the offset each got."""
    p = make_producer(broker.bootstrap)
    reports = produce_all(p, [
        {"topic": topic, "partition": r["partition"], "key": r["key"],
         "timestamp": r["timestamp"], "headers": r["headers"],
         "value": json.dumps({"id": r["id"]}).encode()} for r in records])
    out = []
    for r, (partition, offset) in zip(records, reports):
        assert partition == r["partition"]
        out.append({**r, "offset": offset})
    return out


def test_metadata_columns_hold_what_was_produced(broker):
    topic = unique_topic("meta")
    create_topic(broker.bootstrap, topic, partitions=2)
    produced = produce_meta(broker, topic, META_RECORDS)
    # Two records in each partition: offsets 0 and 1 of each.
    assert sorted((r["partition"], r["offset"]) for r in produced) == [(0, 0), (0, 1), (1, 0),
                                                                        (1, 1)]

    def row(r):
        return (r["id"], r["key"], r["partition"], r["offset"], at(r["timestamp"]))

    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(META_SQL.format(name="meta", topic=topic))
        # The documented types of the metadata columns.
        assert column_types(cur, "meta") == {
            "id": "bigint", "k": "bytea", "part": "integer", "off": "bigint",
            "ts": "timestamptz", "hdrs": "struct<key varchar, value bytea>[]"}

        # Ad hoc.
        cur.execute("SELECT id, k, part, off, ts, hdrs FROM meta ORDER BY id")
        got = cur.fetchall()
        assert [tuple(g[:5]) for g in got] == [row(r) for r in produced]
        assert [headers_of(g[5]) for g in got] == [r["headers"] for r in produced]
        # Metadata columns in expressions: header fields by position, filters on them.
        cur.execute("SELECT id, cardinality(hdrs), hdrs[1]['key'], hdrs[1]['value'], "
                    "hdrs[3]['value'] IS NULL FROM meta ORDER BY id")
        assert [(i, int(n), k, v, null3) for i, n, k, v, null3 in cur.fetchall()] == [
            (1, 3, "trace", b"abc", True), (2, 0, None, None, True),
            (3, 1, "trace", b"xyz", True), (4, 1, "only", b"", True)]
        cur.execute("SELECT id FROM meta WHERE ts > CAST('2023-11-14T22:13:20.200Z' AS "
                    "TIMESTAMPTZ) ORDER BY id")
        assert cur.fetchall() == [(3,)]
        cur.execute("SELECT id FROM meta WHERE k IS NULL")
        assert cur.fetchall() == [(2,)]

        # A continuous pipeline. The whole header list cannot be a view's column (its rows
        # are stored as JSON, which has no list of structs), so the view takes its parts.
        cur.execute("CREATE MATERIALIZED VIEW meta_v AS SELECT id, k, part, off, ts, "
                    "cardinality(hdrs) AS n_headers, hdrs[1]['key'] AS h1_key, "
                    "hdrs[1]['value'] AS h1_value, hdrs[2]['key'] AS h2_key, "
                    "hdrs[2]['value'] AS h2_value, hdrs[3]['key'] AS h3_key, "
                    "hdrs[3]['value'] AS h3_value FROM meta")
        # One more record once the pipeline runs.
        late = {"id": 5, "partition": 1, "key": b"\xfflate", "timestamp": 1_750_000_000_789,
                "headers": [("a", b"1"), ("b", None)]}
        produced += produce_meta(broker, topic, [late])
        assert produced[-1]["offset"] == 2

        def view_row(r):
            hs = r["headers"] + [(None, None)] * (3 - len(r["headers"]))
            return (*row(r), len(r["headers"]), hs[0][0], hs[0][1], hs[1][0], hs[1][1],
                    hs[2][0], hs[2][1])

        want = [view_row(r) for r in produced]
        wait_equal(cur, "SELECT id, k, part, off, ts, n_headers::bigint, h1_key, h1_value, "
                        "h2_key, h2_value, h3_key, h3_value FROM meta_v ORDER BY id", want)
        assert column_types(cur, "meta_v")["ts"] == "timestamptz"
        assert column_types(cur, "meta_v")["k"] == "bytea"

    # The view's topic to a Kafka client: bytea as base64, timestamps RFC 3339.
    records = read_committed(broker.bootstrap, "meta_v", 1, len(produced), settle=0.5)
    rows = sorted((json.loads(m.value()) for m in records), key=lambda v: v["id"])
    assert len(rows) == len(produced)
    for v, r in zip(rows, produced):
        assert v["id"] == r["id"]
        assert v["k"] == (None if r["key"] is None else b64(r["key"]))
        assert (v["part"], v["off"]) == (r["partition"], r["offset"])
        assert datetime.fromisoformat(v["ts"]) == at(r["timestamp"]), v["ts"]


REPEATED_HEADERS = [("h", b"1"), ("x", b"2"), ("h", b"3")]


def produce_repeated_headers(broker, cur) -> None:
    topic = unique_topic("rephdr")
    create_topic(broker.bootstrap, topic, partitions=1)
    produce_meta(broker, topic, [{"id": 1, "partition": 0, "key": b"k",
                                  "timestamp": 1_700_000_000_000, "headers": REPEATED_HEADERS}])
    cur.execute(META_SQL.format(name="rep", topic=topic))


def test_repeated_header_keys_reach_a_pipeline_in_order(broker):
    """Kafka headers are an ordered list in which a key may repeat."""
    with connect(broker) as conn, conn.cursor() as cur:
        produce_repeated_headers(broker, cur)
        cur.execute("CREATE MATERIALIZED VIEW rep_v AS SELECT id, cardinality(hdrs) AS n, "
                    "hdrs[1]['key'] AS k1, hdrs[1]['value'] AS v1, hdrs[2]['key'] AS k2, "
                    "hdrs[2]['value'] AS v2, hdrs[3]['key'] AS k3, hdrs[3]['value'] AS v3 "
                    "FROM rep")
        wait_equal(cur, "SELECT id, n::bigint, k1, v1, k2, v2, k3, v3 FROM rep_v",
                   [(1, 3, "h", b"1", "x", b"2", "h", b"3")])


def test_adhoc_select_keeps_repeated_header_keys(broker):
    with connect(broker) as conn, conn.cursor() as cur:
        produce_repeated_headers(broker, cur)
        cur.execute("SELECT hdrs FROM rep")
        assert headers_of(cur.fetchone()[0]) == REPEATED_HEADERS


def test_log_append_time_topics_show_the_brokers_time(broker):
    """On a `message.timestamp.type=LogAppendTime` topic every record's timestamp is the time
    the broker appended its batch, as a Kafka consumer reads it, whatever the producer set:
    the same in an ad-hoc SELECT and in a view."""
    topic = unique_topic("logtime")
    create_topic(broker.bootstrap, topic, partitions=1,
                 config={"message.timestamp.type": "LogAppendTime"})
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": topic, "partition": 0, "value": json.dumps({"id": i}).encode(),
                     "timestamp": 1_000_000_000_000 + i} for i in range(3)])
    c = make_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen, deadline = [], time.monotonic() + 30
        while len(seen) < 3:
            assert time.monotonic() < deadline, seen
            for m in c.consume(num_messages=10, timeout=0.5):
                if m.error() is None:
                    seen.append(m.timestamp())
    finally:
        c.close()
    assert all(kind == TIMESTAMP_LOG_APPEND_TIME for kind, _ in seen), seen
    want = sorted((i, at(ms)) for i, (_, ms) in enumerate(seen))
    assert all(ms > 1_600_000_000_000 for _, ms in seen), "the broker's clock, not the producer's"
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE logtime (id BIGINT NOT NULL) INCLUDE timestamp AS ts "
                    f"WITH (topic = '{topic}', format = 'json')")
        cur.execute("SELECT id, ts FROM logtime ORDER BY id")
        assert cur.fetchall() == want
        cur.execute("CREATE MATERIALIZED VIEW logtime_v AS SELECT id, ts FROM logtime")
        wait_equal(cur, "SELECT id, ts FROM logtime_v ORDER BY id", want)


# ---------------------------------------------------------------------------------------------
# 2. CSV and text sources.

def check_dead_letters(broker, dlq: str, partitions: int, src_topic: str, bad: list,
                       pipelines: int):
    """`dlq` holds each of `bad` (produced records with their offset, expected kind and error
    text fragments) once per pipeline, as read plus the weir.* headers."""
    dead = read_committed(broker.bootstrap, dlq, partitions, len(bad) * pipelines, settle=1.0)
    assert len(dead) == len(bad) * pipelines
    by_source = dead_letters_by_source(dead)
    assert sorted(by_source) == sorted((b["partition"], b["offset"]) for b in bad)
    for b in bad:
        copies = by_source[(b["partition"], b["offset"])]
        assert len(copies) == pipelines, (b, len(copies))
        for m in copies:
            assert m.partition() == b["partition"]
            assert (m.key(), m.value()) == (b["key"], b["value"])
            assert m.timestamp()[1] == b["timestamp"]
            headers = m.headers()
            # The record's own headers first, as produced, then Weir's.
            assert headers[:len(b["headers"])] == b["headers"]
            weir = dict(headers[len(b["headers"]):])
            assert set(weir) == {"weir.error", "weir.error.kind", "weir.source.topic",
                                 "weir.source.partition", "weir.source.offset"}
            assert weir["weir.error.kind"] == b["kind"].encode(), (b, weir)
            for fragment in b["error"]:
                assert fragment.encode() in weir["weir.error"], (b, weir)
            assert weir["weir.source.topic"] == src_topic.encode()


def produce_lines(broker, topic: str, lines: list) -> list:
    """lines: dicts with value, partition and optionally key/headers; each gets a timestamp
    and the offset it was written at."""
    p = make_producer(broker.bootstrap)
    out = [{"key": None, "headers": [], "timestamp": 1_710_000_000_000 + i, **line}
           for i, line in enumerate(lines)]
    reports = produce_all(p, [{"topic": topic, "partition": r["partition"], "key": r["key"],
                               "value": r["value"], "timestamp": r["timestamp"],
                               "headers": r["headers"] or None} for r in out])
    for r, (_, offset) in zip(out, reports):
        r["offset"] = offset
    return out


def test_csv_source_views_and_dead_letters(broker):
    topic = unique_topic("csv")
    create_topic(broker.bootstrap, topic, partitions=2)
    good = [  # (line, row)
        (b"1;ann;12.5;2024-01-02", (1, "ann", 12.5, "2024-01-02")),
        (b'2;"bob; jr";7.25;2024-01-03', (2, "bob; jr", 7.25, "2024-01-03")),
        (b'3;"say ""hi""";30;2024-01-04', (3, 'say "hi"', 30.0, "2024-01-04")),
        (b"4;;40.5;2024-01-05", (4, None, 40.5, "2024-01-05")),
        (b'5;"";1;2024-01-06', (5, "", 1.0, "2024-01-06")),
        (b"6;dan;99", (6, "dan", 99.0, None)),
        (b"7;eve;8.5;2024-01-08\r\n", (7, "eve", 8.5, "2024-01-08")),
    ]
    bad = [  # (line, kind, fragments of weir.error)
        (b"8;fay;abc;2024-01-09", "type", ["column amount", '"abc" is not a valid double']),
        (b"9;gus;1;2024-01-10;extra", "parse", ["5 fields for 4 columns"]),
        (b";noid;2;2024-01-11", "not_null", ["column id", "NOT NULL"]),
    ]
    lines = [{"value": v, "partition": i % 2, "key": f"g{i}".encode()}
             for i, (v, _) in enumerate(good)]
    lines += [{"value": v, "partition": 1, "key": f"b{i}".encode(),
               "headers": [("origin", b"csv-test")]} for i, (v, _, _) in enumerate(bad)]
    produced = produce_lines(broker, topic, lines)
    bad_produced = [{**r, "kind": kind, "error": error}
                     for r, (_, kind, error) in zip(produced[len(good):], bad)]
    rows = sorted(r for _, r in good)

    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE people (id BIGINT NOT NULL, name VARCHAR, amount DOUBLE, "
                    f"day DATE) WITH (topic = '{topic}', format = 'csv', csv.delimiter = ';')")
        assert column_types(cur, "people") == {"id": "bigint", "name": "varchar",
                                               "amount": "double precision", "day": "date"}
        # Ad hoc: the good lines, the others skipped.
        cur.execute("SELECT id, name, amount, CAST(day AS VARCHAR) FROM people ORDER BY id")
        assert cur.fetchall() == rows
        cur.execute("CREATE MATERIALIZED VIEW people_big AS SELECT id, upper(name) AS name, "
                    "amount, day FROM people WHERE amount > 10")
        cur.execute("CREATE MATERIALIZED VIEW people_count AS SELECT count(*) AS n, "
                    "count(name) AS named, count(day) AS dated, sum(amount) AS total "
                    "FROM people")
        wait_equal(cur, "SELECT id, name, amount, CAST(day AS VARCHAR) FROM people_big "
                        "ORDER BY id",
                   [(i, None if n is None else n.upper(), a, d) for i, n, a, d in rows if a > 10])
        wait_equal(cur, "SELECT n, named, dated, total FROM people_count",
                   [(len(rows), sum(r[1] is not None for r in rows),
                     sum(r[3] is not None for r in rows), sum(r[2] for r in rows))])
        for view, written in (("people_big", 4), ("people_count", None)):
            info = wait_described(cur, view, {"records dead-lettered": str(len(bad))})
            assert info["status"] == "running"
            if written is not None:
                assert info["records written"] == str(written)

    check_dead_letters(broker, "people.dlq", 2, topic, bad_produced, pipelines=2)


def test_text_source_views_and_dead_letters(broker):
    topic = unique_topic("text")
    create_topic(broker.bootstrap, topic, partitions=1)
    good = [b"INFO start", b"ERROR disk full", "ERROR ünïcode ✓".encode(), None, b"",
            b"INFO a;b,c \"quoted\"", b"ERROR"]
    bad = [b"\xff\xfe not utf-8"]
    produced = produce_lines(
        broker, topic,
        [{"value": v, "partition": 0} for v in good]
        + [{"value": v, "partition": 0, "key": b"bin", "headers": [("h", b"1")]} for v in bad])
    bad_produced = [{**r, "kind": "parse", "error": ["not UTF-8"]} for r in produced[len(good):]]
    texts = [None if v is None else v.decode() for v in good]

    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE logs WITH (topic = '{topic}', format = 'text')")
        assert column_types(cur, "logs") == {"value": "varchar"}
        cur.execute("SELECT value FROM logs")
        assert sorted(cur.fetchall(), key=repr) == sorted(((t,) for t in texts), key=repr)
        cur.execute("CREATE MATERIALIZED VIEW log_errors AS SELECT value AS line, "
                    "length(value) AS len FROM logs WHERE value LIKE 'ERROR%'")
        cur.execute("CREATE MATERIALIZED VIEW log_count AS SELECT count(*) AS n, "
                    "count(value) AS non_null, count(*) FILTER (WHERE value = '') AS empty "
                    "FROM logs")
        errors = sorted((t, len(t)) for t in texts if t is not None and t.startswith("ERROR"))
        assert len(errors) == 3
        wait_equal(cur, "SELECT line, len FROM log_errors ORDER BY line", errors)
        wait_equal(cur, "SELECT n, non_null, empty FROM log_count",
                   [(len(texts), sum(t is not None for t in texts), 1)])
        for view in ("log_errors", "log_count"):
            wait_described(cur, view, {"records dead-lettered": "1", "status": "running"})

    check_dead_letters(broker, "logs.dlq", 1, topic, bad_produced, pipelines=2)


# ---------------------------------------------------------------------------------------------
# 3. JSON dead letters of each kind, a named dead-letter topic, and none.

def test_json_dead_letter_kinds_named_topic_and_none(broker):
    topic = unique_topic("js")
    create_topic(broker.bootstrap, topic, partitions=3)
    custom = unique_topic("custom_dead")
    good = [{"id": 1, "amount": 10, "note": "a"}, {"id": 2, "amount": 20},
            {"id": 3, "amount": -7, "note": None}]
    bad = [  # (value, kind, fragments of weir.error)
        (json.dumps({"id": 4, "amount": "abc"}).encode(), "type",
         ["column amount", "a string does not fit type bigint"]),
        (json.dumps({"amount": 5, "note": "no id"}).encode(), "not_null",
         ["column id", "null value in a NOT NULL column"]),
        (json.dumps({"id": None, "amount": 6}).encode(), "not_null",
         ["column id", "null value in a NOT NULL column"]),
        (b'{"id": 7, "amount": ', "parse", ["invalid JSON"]),
    ]
    lines = [{"value": json.dumps(g).encode(), "partition": i % 3, "key": str(g["id"]).encode()}
             for i, g in enumerate(good)]
    lines += [{"value": v, "partition": i % 3, "key": f"bad{i}".encode(),
               "headers": [("origin", f"t{i}".encode())]} for i, (v, _, _) in enumerate(bad)]
    produced = produce_lines(broker, topic, lines)
    bad_produced = [{**r, "kind": kind, "error": error}
                    for r, (_, kind, error) in zip(produced[len(good):], bad)]

    with connect(broker) as conn, conn.cursor() as cur:
        columns = "(id BIGINT NOT NULL, amount BIGINT, note VARCHAR DEFAULT 'none')"
        cur.execute(f"CREATE SOURCE pay {columns} WITH (topic = '{topic}', format = 'json', "
                    f"dead_letter = '{custom}')")
        cur.execute(f"CREATE SOURCE pay_quiet {columns} WITH (topic = '{topic}', "
                    f"format = 'json', dead_letter = 'none')")
        cur.execute("CREATE MATERIALIZED VIEW pay_v AS SELECT id, amount * 2 AS doubled, note "
                    "FROM pay")
        cur.execute("CREATE MATERIALIZED VIEW pay_quiet_v AS SELECT id FROM pay_quiet")
        want = [(1, 20, "a"), (2, 40, "none"), (3, -14, None)]
        wait_equal(cur, "SELECT id, doubled, note FROM pay_v ORDER BY id", want)
        wait_equal(cur, "SELECT id FROM pay_quiet_v ORDER BY id", [(1,), (2,), (3,)])
        for view in ("pay_v", "pay_quiet_v"):
            info = wait_described(cur, view, {"records dead-lettered": str(len(bad))})
            assert info["status"] == "running"
            assert info["records written"] == "3"

    # The named topic, with the source topic's partition count, holds every kind once.
    check_dead_letters(broker, custom, 3, topic, bad_produced, pipelines=1)
    topics = topic_partition_counts(broker.bootstrap)
    assert topics[custom] == 3
    # Neither the default name of the first source nor any for the second was created: the
    # topics are the source's, the named dead letters', the views' and Weir's internal ones.
    assert "pay.dlq" not in topics and "pay_quiet.dlq" not in topics
    assert {t for t in topics if not t.startswith("__")} == {topic, custom, "pay_v",
                                                             "pay_quiet_v"}, sorted(topics)
