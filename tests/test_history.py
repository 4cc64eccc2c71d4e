"""The fault harness's checker (history.py) on small hand-made histories: a clean one passes,
and each of the five properties has a history that breaks it and is caught. No broker."""

from __future__ import annotations

from history import History, check, load, percentile, stream_all

T, OUT = "data", "out"


def ack(p, o, v):
    return {"k": "ack", "t": T, "p": p, "o": o, "v": v, "at": 0.0}


def final(p, o, v, t=T, via=1):
    return {"k": "final", "t": t, "p": p, "o": o, "v": v, "via": via}


def seen(p, o, v, t=T, r="c1", rc=True):
    return {"k": "seen", "t": t, "p": p, "o": o, "v": v, "r": r, "rc": rc}


def commit(o, p=0, g="g", kind="commit"):
    return {"k": kind, "g": g, "t": T, "p": p, "o": o}


def txn(i, outcome, outputs, inputs=()):
    return {"k": "txn", "id": i, "outcome": outcome, "outputs": outputs,
            "inputs": [list(x) for x in inputs]}


def clean():
    return [
        ack(0, 0, "a"), ack(0, 1, "b"), {"k": "unknown", "t": T, "v": "c", "err": "timeout"},
        ack(1, 0, "d"),
        seen(0, 0, "a"), seen(0, 1, "b"), commit(2), commit(2, kind="fetched"), commit(2),
        {"k": "episode", "kind": "kill_leader", "node": 2, "at": 1.0},
        {"k": "failover", "node": 2, "seconds": 1.5},
        # The unknown produce landed: fine, once.
        final(0, 0, "a"), final(0, 1, "b"), final(0, 2, "c"), final(1, 0, "d"),
        final(0, 0, "a", via=2), final(0, 1, "b", via=2),
        txn("x1", "commit", ["L|data|0|0|1", "L|data|0|1|1"]),
        txn("x2", "abort", ["L|data|1|0|2"]),
        txn("x3", "commit", ["L|data|1|0|3"]),
        txn("x4", "unknown", ["L|data|0|2|4"]),  # never made it: all or nothing holds
        final(0, 0, "L|data|0|0|1", t=OUT), final(0, 1, "L|data|0|1|1", t=OUT),
        final(1, 3, "L|data|1|0|3", t=OUT),
    ]


def violations(events):
    return check(events, txn_output_topic=OUT).violations


def test_a_clean_history_passes_and_is_counted():
    rep = check(clean(), txn_output_topic=OUT)
    assert rep.violations == []
    c = rep.counts
    assert c["acknowledged records"] == 3 and c["unknown produces"] == 1
    assert c["acknowledged commits"] == 2 and c["episodes"] == {"kill_leader": 1}
    assert c["transactions"] == {"abort": 1, "commit": 2, "unknown": 1}
    assert c["failover p50 s"] == 1.5
    assert c["failover after kill_leader: n, p50, p99 s"] == (1, 1.5, 1.5)


def test_1_an_acknowledged_record_missing_or_moved_is_caught():
    ev = [e for e in clean() if e != final(1, 0, "d")]
    assert any(x.startswith("(1)") and "'d'" in x for x in violations(ev))
    moved = [final(1, 1, "d") if e == final(1, 0, "d") else e for e in clean()]
    assert any(x.startswith("(1)") for x in violations(moved))


def test_2_a_value_twice_is_caught_even_if_it_was_never_acknowledged():
    ev = clean() + [final(1, 1, "c")]
    assert [x for x in violations(ev) if x.startswith("(2)")] == [
        "(2) 'c' is in data 2 times: [(0, 2), (1, 1)]"]


def test_3_two_records_at_one_offset_are_caught():
    # A consumer saw "z" at 0@1 during the run; the final read has "b": a visible record was
    # truncated away.
    ev = clean() + [seen(0, 1, "z", r="c2")]
    assert any(x.startswith("(3)") and "'z'" in x for x in violations(ev))
    # Two final reads through different brokers disagreeing is caught the same way.
    ev = clean() + [final(1, 0, "y", via=2)]
    assert any(x.startswith("(3)") for x in violations(ev))


def test_4_aborted_output_visible_is_caught():
    ev = clean() + [final(1, 4, "L|data|1|0|2", t=OUT)]
    assert any(x.startswith("(4)") and "aborted" in x for x in violations(ev))
    # Seen by a read_committed consumer during the run counts too, even if gone later.
    ev = clean() + [seen(1, 4, "L|data|1|0|2", t=OUT)]
    assert any(x.startswith("(4)") and "aborted" in x for x in violations(ev))


def test_4_committed_output_missing_or_twice_is_caught():
    ev = [e for e in clean() if e != final(0, 1, "L|data|0|1|1", t=OUT)]
    assert any(x.startswith("(4)") and "missing" in x for x in violations(ev))
    # The same input processed by two committed transactions: exactly-once broken.
    ev = clean() + [txn("x5", "commit", ["L|data|0|0|5"]), final(0, 5, "L|data|0|0|5", t=OUT)]
    assert any(x.startswith("(4)") and "2 visible outputs" in x for x in violations(ev))


def test_4_a_transaction_of_unknown_outcome_must_be_all_or_nothing():
    ev = clean() + [txn("x6", "unknown", ["L|data|1|1|6", "L|data|1|2|6"]),
                    final(1, 6, "L|data|1|1|6", t=OUT)]
    assert any(x.startswith("(4)") and "partly visible" in x for x in violations(ev))
    # Seen by read_committed while unfinished, then gone: it was never committed.
    ev = clean() + [txn("x7", "unknown", ["L|data|1|3|7"]), seen(1, 7, "L|data|1|3|7", t=OUT)]
    assert any(x.startswith("(4)") and "final read does not have" in x for x in violations(ev))


def test_5_committed_offsets_going_backwards_are_caught():
    ev = clean() + [commit(1)]
    assert [x for x in violations(ev) if x.startswith("(5)")] == [
        "(5) group g data-0: commit 1 after 2"]
    ev = clean() + [commit(0, kind="fetched")]
    assert any(x.startswith("(5)") and "fetched 0" in x for x in violations(ev))
    # Other partitions and groups are separate sequences.
    assert violations(clean() + [commit(0, p=1), commit(1, g="h")]) == []


def test_history_round_trips_through_jsonl(tmp_path):
    h = History(tmp_path / "h.jsonl")
    for e in clean():
        h.add(e.pop("k"), **e)
    h.close()
    assert check(load(tmp_path / "h.jsonl"), txn_output_topic=OUT).violations == []
    first = load(tmp_path / "h.jsonl")[0]
    assert first.pop("ts") > 0 and first == ack(0, 0, "a")


def test_worker_files_merge_in_time_order(tmp_path):
    """A worker process writes `<stem>.<name>.jsonl` beside the test's history; stream_all
    interleaves them by `ts`, so per-partition commit order (check 5) is the order in time."""
    main, m0, m1 = (History(tmp_path / n, fresh=True)
                    for n in ("h.jsonl", "h.m0.jsonl", "h.m1.jsonl"))
    m0.add("commit", g="g", t=T, p=0, o=5)
    main.add("episode", kind="pause", node=1, at=0.0)
    m1.add("commit", g="g", t=T, p=0, o=9)
    m0.add("commit", g="g", t=T, p=0, o=7)  # after m1's 9 in time: check 5 must see it
    for h in (main, m0, m1):
        h.close()
    (tmp_path / "h.m0.result.json").write_text("{}")  # not a history file
    merged = list(stream_all(tmp_path / "h.jsonl"))
    assert [e.get("o") for e in merged] == [5, None, 9, 7]
    assert [x for x in check(merged).violations if x.startswith("(5)")] == [
        "(5) group g data-0: commit 7 after 9"]


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 99) == 99.0 and percentile(xs, 100) == 100.0


def test_an_ack_without_an_offset_needs_its_value_once_in_its_partition():
    no_offset = {"k": "ack", "t": T, "p": 1, "o": None, "v": "d", "at": 0.0}
    assert violations(clean() + [no_offset]) == []
    lost = {**no_offset, "v": "never-written"}
    assert [x for x in violations(clean() + [lost]) if x.startswith("(1)")] == [
        "(1) acknowledged 'never-written' (no offset) in data-1, final read has it at []"]
    elsewhere = {**no_offset, "p": 0}
    assert any("(1)" in x and "'d' (no offset) in data-0" in x
               for x in violations(clean() + [elsewhere]))
