"""The fault harness's history (one JSON object per line) and the checker over it.

test_cluster_faults.py appends every event as it happens: acknowledged and failed produces,
every record a consumer saw, acknowledged group commits and OffsetFetch answers, transaction
outcomes, fault episodes. After the final heal it appends full reads through two brokers and
runs `check`, which returns the violations of the five properties of docs/design/cluster.md
§10 (test_history.py feeds it small hand-made histories that break each one).

Event kinds (`k`), other fields by kind:
- `ack`      topic t, partition p, offset o (None when the client did not say), value v, time at
             (monotonic s): an acknowledged record
- `unknown`  t, v, err: a produce whose outcome the client could not tell (it may be in the log)
- `seen`     t, p, o, v, reader r, read_committed rc: one record observed by a consumer
- `final`    t, p, o, v, via: the final full read (read_committed), one event per record
- `commit`   group g, t, p, o: an acknowledged offset commit (OffsetCommit answered without error)
- `fetched`  g, t, p, o: an OffsetFetch answer (o >= 0)
- `txn`      id, outcome (commit | abort | unknown), inputs [[t, p, o]...], outputs [v...]
- `episode`  kind, node, at, ...: a fault the loop injected
- `failover` node, seconds: kill of a leader to the first acknowledged send it used to lead
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path


class History:
    """Append-only JSONL. Each event gets `ts` (time.monotonic(), one clock for every process on
    the machine), by which `stream_all` merges the test's file with its workers' files. A
    worker's file (`fresh`) is line-buffered: what it wrote survives its being killed."""

    def __init__(self, path: Path, fresh: bool = False):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file = open(self.path, "w", buffering=1) if fresh else \
            open(self.path, "a", buffering=1 << 16)

    def add(self, kind: str, /, **fields):
        line = json.dumps({"k": kind, "ts": time.monotonic(), **fields}, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")

    def close(self):
        with self._lock:
            self._file.close()


def load(path: Path) -> list[dict]:
    return list(stream(path))


def stream(path: Path):
    """The events one at a time: a long run's history is millions of lines."""
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def stream_all(path: Path):
    """The events of `path` and of its workers' files (`<stem>.<worker>.jsonl` beside it),
    merged in `ts` order (each file is in order: one thread writes it)."""
    path = Path(path)
    files = [path, *sorted(path.parent.glob(f"{path.stem}.*.jsonl"))]
    return heapq.merge(*(stream(f) for f in files), key=lambda e: e.get("ts", 0.0))


def percentile(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no samples."""
    if not xs:
        return None
    s = sorted(xs)
    rank = max(1, -(-len(s) * q // 100))  # ceil(len * q / 100), at least 1
    return s[int(rank) - 1]


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        lines = [f"{k}: {v}" for k, v in c.items()]
        lines.append(f"violations: {len(self.violations)}")
        lines += [f"  {v}" for v in self.violations[:50]]
        return "\n".join(lines)


def check(events, txn_output_topic: str | None = None) -> Report:
    """The five properties over a history (any iterable of events, read once) whose `final`
    events hold full reads of every topic that has `ack` events (and of `txn_output_topic`)."""
    rep = Report()
    v = rep.violations
    final_at: dict[tuple, str] = {}          # (t, p, o) -> value, from the final reads
    final_positions: dict[tuple, set] = defaultdict(set)  # (t, value) -> {(p, o)}
    observed: dict[tuple, str] = {}          # (t, p, o) -> first value any reader saw there
    acks = []
    unknown = 0
    commits: dict[tuple, list[int]] = defaultdict(list)   # (g, t, p) -> offsets in order
    txns = []
    episodes: Counter = Counter()
    failovers: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)  # failovers by the episode's kind
    last_kind = None
    seen_count = 0
    seen_rc = set()                          # values read_committed consumers saw in the output
    for e in events:
        k = e["k"]
        if k == "ack":
            acks.append(e)
        elif k == "unknown":
            unknown += 1
        elif k in ("seen", "final"):
            key = (e["t"], e["p"], e["o"])
            first = observed.setdefault(key, e["v"])
            if first != e["v"]:
                # (3): the same offset showed two different records.
                v.append(f"(3) {e['t']}-{e['p']}@{e['o']} seen as {first!r} and as {e['v']!r} "
                         f"(by {e.get('r') or 'final via ' + str(e.get('via'))})")
            if k == "final":
                final_at[key] = e["v"]
                final_positions[(e["t"], e["v"])].add((e["p"], e["o"]))
            else:
                seen_count += 1
                if e["t"] == txn_output_topic and e.get("rc"):
                    seen_rc.add(e["v"])
        elif k in ("commit", "fetched"):
            commits[(e["g"], e["t"], e["p"])].append((k, e["o"]))
        elif k == "txn":
            txns.append(e)
        elif k == "episode":
            episodes[e["kind"]] += 1
            last_kind = e["kind"]
        elif k == "failover":
            failovers.append(e["seconds"])
            by_kind[last_kind].append(e["seconds"])

    # (1) every acknowledged record at its acknowledged offset, with its value. librdkafka
    # now and then acknowledges without an offset (`o` None, seen 3 times in 707,886 acks of
    # a 200-episode run): such a record must be in its partition, once.
    for a in acks:
        if a["o"] is None:
            where = final_positions.get((a["t"], a["v"]), set())
            if [p for p, _ in where] != [a["p"]]:
                v.append(f"(1) acknowledged {a['v']!r} (no offset) in {a['t']}-{a['p']}, "
                         f"final read has it at {sorted(where)}")
            continue
        got = final_at.get((a["t"], a["p"], a["o"]))
        if got != a["v"]:
            v.append(f"(1) acknowledged {a['v']!r} at {a['t']}-{a['p']}@{a['o']}, "
                     f"final read has {got!r} there")

    # (2) no value twice in the log, acknowledged or not.
    for (t, value), where in final_positions.items():
        if len(where) > 1:
            v.append(f"(2) {value!r} is in {t} {len(where)} times: {sorted(where)}")

    # (5) per group and partition, acknowledged commits and OffsetFetch answers never go back.
    n_commits = 0
    for (g, t, p), seq in commits.items():
        high = -1
        for kind, o in seq:
            n_commits += kind == "commit"
            if o < high:
                v.append(f"(5) group {g} {t}-{p}: {kind} {o} after {high}")
            high = max(high, o)

    # (4) transactions: read_committed never saw an aborted or unfinished transaction's
    # output; a committed transaction's outputs are all in the final read, once; an input
    # yields at most one visible output.
    outcomes = Counter(x["outcome"] for x in txns)
    if txns:
        assert txn_output_topic, "a history with transactions needs their output topic"
        committed_values = set()
        aborted_values = {}
        for x in txns:
            if x["outcome"] == "commit":
                committed_values.update(x["outputs"])
            elif x["outcome"] == "abort":
                for o in x["outputs"]:
                    aborted_values[o] = x["id"]
        visible = {val for (t, val) in final_positions if t == txn_output_topic}
        for val in sorted((visible | seen_rc) & set(aborted_values)):
            v.append(f"(4) {val!r} of aborted transaction {aborted_values[val]} was visible "
                     f"to read_committed")
        for val in sorted(committed_values - visible):
            v.append(f"(4) {val!r} of a committed transaction is missing from the final read")
        # Outputs name their input ("loop|t|p|o|..."): one visible output per input per loop.
        per_input = Counter(val.rsplit("|", 1)[0] for val in visible)
        for inp, n in per_input.items():
            if n > 1:
                v.append(f"(4) input {inp} produced {n} visible outputs")
        # A transaction whose end the loop did not learn (its coordinator was down, the loop
        # was fenced) is all or nothing, and nothing read_committed saw of it may vanish.
        for x in txns:
            if x["outcome"] == "unknown":
                shown = [o for o in x["outputs"] if o in visible]
                if shown and len(shown) != len(x["outputs"]):
                    v.append(f"(4) transaction {x['id']} (outcome unknown) is partly visible: "
                             f"{len(shown)} of {len(x['outputs'])} outputs")
                gone = [o for o in x["outputs"] if o in seen_rc and o not in visible]
                if gone:
                    v.append(f"(4) transaction {x['id']} (outcome unknown): read_committed saw "
                             f"{gone[0]!r}, which the final read does not have")

    rep.counts = {
        "episodes": dict(sorted(episodes.items())),
        "episodes total": sum(episodes.values()),
        "acknowledged records": len(acks),
        "unknown produces": unknown,
        "records seen by the group": seen_count,
        "final records read": len(final_at),
        "acknowledged commits": n_commits,
        "transactions": dict(sorted(outcomes.items())),
        "failovers measured": len(failovers),
        "failover p50 s": percentile(failovers, 50),
        "failover p99 s": percentile(failovers, 99),
        "failover max s": max(failovers) if failovers else None,
    }
    for kind, xs in sorted(by_kind.items(), key=lambda kv: str(kv[0])):
        rep.counts[f"failover after {kind}: n, p50, p99 s"] = (
            len(xs), percentile(xs, 50), percentile(xs, 99))
    return rep
