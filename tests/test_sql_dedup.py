"""Deduplication at the source (`dedup.key` / `dedup.within`) exactly once across kill -9.

A producer thread writes events to a three-partition topic, keyed by id (so every copy of an
id lands in one partition, in order): every 7th event is sent again 1 ms later with another
value (a duplicate: dropped), every 13th re-sends the id of the event 100 before (about 1 s
later: dropped), every 11th the id of the event 500 before (about 5 s later, beyond the
2 s bound: kept, a new first sighting). The broker is killed at seeded random moments (the
seed is printed; WEIR_DEDUP_SEED replays one) and restarted. Then two views over the
deduplicating source must equal a reference computed here from what the topic holds, read
in offset order with the rule of the design (a row is dropped when its id's first-seen time
is less than the bound away), and DESCRIBE must count exactly the rows dropped: a duplicate
dropped before a crash is dropped after it, and nothing is dropped twice or let through.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

from conftest import create_topic, make_producer, unique_topic
from test_sql_eos import describe, read_all, rows
from test_sql_tables import connect  # retried while a restarted broker opens its SQL port

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARTS = 3
CHUNK = 300
WITHIN_MS = 2000


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def chunk_messages(c: int, rng: random.Random, topic: str) -> list[dict]:
    out = []

    def send(ident: int, v: int, t: datetime):
        e = {"id": ident, "k": f"k{ident % 10}", "v": v, "ts": stamp(t)}
        out.append({"topic": topic, "key": str(ident).encode(), "value": json.dumps(e)})

    for i in range(c * CHUNK, (c + 1) * CHUNK):
        # 10 ms apart, up to 0.5 s early: disorder well within the 3 s watermark delay.
        t = BASE + timedelta(milliseconds=i * 10 + 500 - rng.randrange(0, 500))
        send(i, i * 10, t)
        if i % 7 == 0:
            send(i, i * 10 + 1, t + timedelta(milliseconds=1))
        if i % 13 == 0 and i >= 100:
            send(i - 100, i * 10 + 2, t)
        if i % 11 == 0 and i >= 500:
            send(i - 500, i * 10 + 3, t)
    return out


class Producer(threading.Thread):
    """Writes chunks until stopped, through restarts, idempotent (partitions stay in order
    across retries); unacknowledged records are simply not in the topic the reference reads."""

    def __init__(self, bootstrap: str, topic: str, seed: int):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.rng = bootstrap, topic, random.Random(seed)
        self.stop = threading.Event()
        self.chunks = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            p = make_producer(self.bootstrap, **{"enable.idempotence": True,
                                                 "message.timeout.ms": 120000})
            while not self.stop.is_set():
                for m in chunk_messages(self.chunks, self.rng, self.topic):
                    while True:
                        try:
                            p.produce(**m)
                            break
                        except BufferError:
                            p.poll(0.05)
                p.poll(0)
                self.chunks += 1
                time.sleep(0.05)
            assert p.flush(150) == 0, "records still unsent after 150 s"
        except BaseException as e:  # reported by the test
            self.error = e


def reference(messages) -> tuple[list, int]:
    """The rows (id, k, v) the deduplication keeps, reading each partition in offset order
    (an id's copies all share one), and how many it drops."""
    first: dict[int, int] = {}
    kept, dropped = [], 0
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        e = json.loads(m.value())
        t = datetime.fromisoformat(e["ts"]).replace(tzinfo=timezone.utc)
        ms = int((t - BASE).total_seconds() * 1000)
        f = first.get(e["id"])
        if f is not None and abs(ms - f) < WITHIN_MS:
            dropped += 1
            continue
        if f is None or ms > f:
            first[e["id"]] = ms
        kept.append((e["id"], e["k"], e["v"]))
    return sorted(kept, key=repr), dropped


def test_source_dedup_exactly_once_across_kill9(broker_factory):
    seed = int(os.environ.get("WEIR_DEDUP_SEED", random.randrange(1 << 32)))
    print(f"WEIR_DEDUP_SEED={seed}")
    rng = random.Random(seed)
    broker = broker_factory(settings={"weir.sql.checkpoint.interval.ms": "300"})
    topic = unique_topic("ev")
    create_topic(broker.bootstrap, topic, partitions=PARTS)
    with connect(broker, timeout=60.0) as conn, conn.cursor() as cur:
        cur.execute("CREATE SOURCE ev (id BIGINT NOT NULL, k VARCHAR, v BIGINT, ts TIMESTAMP, "
                    "WATERMARK FOR ts AS ts - INTERVAL '3' SECOND) "
                    f"WITH (topic = '{topic}', dedup.key = 'id', dedup.within = '2 seconds', "
                    "watermark.idle.timeout = '600s')")
        cur.execute("CREATE MATERIALIZED VIEW kept AS SELECT id, k, v FROM ev")
        cur.execute("CREATE MATERIALIZED VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS s "
                    "FROM ev GROUP BY k")
        cur.execute("SHOW CREATE SOURCE ev")
        assert "dedup.within = '2 seconds'" in cur.fetchall()[0][1]

    producer = Producer(broker.bootstrap, topic, seed)
    producer.start()
    for n in range(3):
        time.sleep(rng.choice([rng.uniform(0.0, 0.4), rng.uniform(0.5, 3.0)]))
        broker.kill9()
        time.sleep(rng.uniform(0.0, 0.5))
        broker.start()
        print(f"kill -9 #{n + 1} after chunk {producer.chunks}")
    time.sleep(rng.uniform(0.5, 2.0))
    producer.stop.set()
    producer.join(180)
    assert producer.error is None, producer.error

    messages = read_all(broker.bootstrap, topic, PARTS)
    want_kept, want_dropped = reference(messages)
    per_k = Counter()
    sums = Counter()
    for _, k, v in want_kept:
        per_k[k] += 1
        sums[k] += v
    want_per_k = sorted(((k, per_k[k], sums[k]) for k in per_k), key=repr)
    print(f"{producer.chunks} chunks, {len(messages)} records, {want_dropped} duplicates")
    assert want_dropped > 100 and len(want_kept) > 1000
    assert len({r[0] for r in want_kept}) < len(want_kept), "some ids kept twice (recurrences)"
    with connect(broker, timeout=60.0) as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 120
        while True:
            got_kept = rows(cur, "SELECT id, k, v FROM kept")
            got_per_k = rows(cur, "SELECT k, n, s FROM per_k")
            dup = {name: describe(cur, name).get("rows duplicate (dropped)")
                   for name in ("kept", "per_k")}
            done = (got_kept == want_kept and got_per_k == want_per_k
                    and set(dup.values()) == {str(want_dropped)})
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        info = {name: describe(cur, name) for name in ("kept", "per_k")}
    cg, cw = Counter(got_kept), Counter(want_kept)
    assert got_kept == want_kept, (f"seed {seed}: {len(got_kept)} rows, want {len(want_kept)}; "
                                   f"extra {list((cg - cw).items())[:5]}, "
                                   f"missing {list((cw - cg).items())[:5]}")
    assert got_per_k == want_per_k, f"seed {seed}"
    assert set(dup.values()) == {str(want_dropped)}, (seed, dup, want_dropped)
    for name, i in info.items():
        assert i.get("status") == "running", (name, i.get("status"))
        assert i.get("rows late (dropped)") == "0", (name, i.get("rows late (dropped)"))
        print(f"{name}: state {i.get('state bytes')}")
