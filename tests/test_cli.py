"""The weir CLI against a running broker.

Every CLI spelling lives in the small `cli_*` helpers at the top, so when the CLI's flags or
output change only those need adjusting. Effects are checked through confluent-kafka, not by
trusting the CLI to read its own writes.
"""

import subprocess
import time

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from conftest import (WEIR_BIN, admin_client, consume_partitions, create_topic, make_producer,
                      produce_all, run_weir, topic_partition_counts, unique_topic, wait_for_topic)


def _cli_available() -> bool:
    # `topic list` exists as a placeholder before the client lands; `topic create` does not.
    for args in (["topic", "list", "--help"], ["topic", "create", "--help"],
                 ["produce", "--help"], ["consume", "--help"]):
        try:
            p = subprocess.run([WEIR_BIN, *args], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if p.returncode != 0:
            return False
    return True


pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(not _cli_available(), reason="weir CLI (topic/produce/consume) not there yet"),
]


# --- the CLI's spelling, in one place ---------------------------------------------------------

def cli_topic_create(bootstrap, name, partitions, configs=None, check=True):
    args = ["topic", "create", name, "-b", bootstrap, "-p", str(partitions)]
    for k, v in (configs or {}).items():
        args += ["-c", f"{k}={v}"]
    return run_weir(*args, check=check)


def cli_topic_list(bootstrap):
    return run_weir("topic", "list", "-b", bootstrap).stdout


def cli_topic_describe(bootstrap, name, check=True):
    return run_weir("topic", "describe", name, "-b", bootstrap, check=check)


def cli_topic_alter(bootstrap, name, partitions=None, sets=None):
    args = ["topic", "alter", name, "-b", bootstrap]
    if partitions is not None:
        args += ["-p", str(partitions)]
    for k, v in (sets or {}).items():
        args += ["--set", f"{k}={v}"]
    return run_weir(*args)


def cli_topic_delete(bootstrap, name, check=True):
    return run_weir("topic", "delete", name, "-b", bootstrap, check=check)


def cli_produce(bootstrap, topic, lines, key_sep=None, partition=None, headers=(), check=True):
    args = ["produce", topic, "-b", bootstrap]
    if key_sep is not None:
        args += ["-k", key_sep]
    if partition is not None:
        args += ["-p", str(partition)]
    for h in headers:
        args += ["-H", h]
    return run_weir(*args, input="".join(line + "\n" for line in lines), check=check)


def cli_consume(bootstrap, topic, offset="beginning", count=None, fmt=None, partition=None,
                check=True, timeout=30):
    args = ["consume", topic, "-b", bootstrap, "-o", str(offset)]
    if count is not None:
        args += ["-n", str(count)]
    if fmt is not None:
        args += ["-f", fmt]
    if partition is not None:
        args += ["-p", str(partition)]
    return run_weir(*args, check=check, timeout=timeout)


def lines_of(out: str):
    """Output lines without blanks (tolerates a format ending in \\n plus an added newline)."""
    return [line for line in out.split("\n") if line.strip()]


# --- tests -------------------------------------------------------------------------------------

def describe_configs(bootstrap, topic):
    a = admin_client(bootstrap)  # must outlive the future
    res = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    (f,) = res.values()
    return {k: e.value for k, e in f.result(15).items()}


def test_topic_lifecycle(broker):
    bs = broker.bootstrap
    topic = unique_topic("cli")
    cli_topic_create(bs, topic, 6, {"retention.ms": "120000", "cleanup.policy": "delete"})
    wait_for_topic(bs, topic, 6)
    assert topic_partition_counts(bs)[topic] == 6
    cfg = describe_configs(bs, topic)
    assert (cfg["retention.ms"], cfg["cleanup.policy"]) == ("120000", "delete")

    assert topic in lines_of(cli_topic_list(bs)) or topic in cli_topic_list(bs).split()

    desc = cli_topic_describe(bs, topic).stdout
    assert topic in desc
    assert "120000" in desc and "retention.ms" in desc, desc
    assert "6" in desc

    # Creating it twice fails with a message naming the problem.
    p = cli_topic_create(bs, topic, 6, check=False)
    assert p.returncode != 0
    assert "exist" in (p.stderr + p.stdout).lower(), p.stderr

    cli_topic_alter(bs, topic, partitions=8)
    wait_for_topic(bs, topic, 8)
    cli_topic_alter(bs, topic, sets={"retention.ms": "240000"})
    assert describe_configs(bs, topic)["retention.ms"] == "240000"

    cli_topic_delete(bs, topic)
    deadline = time.monotonic() + 10
    while topic in topic_partition_counts(bs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in topic_partition_counts(bs)
    assert topic not in cli_topic_list(bs).split()

    p = cli_topic_describe(bs, topic, check=False)
    assert p.returncode != 0
    assert p.stderr.strip(), "an error must say what went wrong"


def test_produce_then_consume_with_format(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique_topic("cliio"), 3)
    for p in range(3):
        cli_produce(bs, topic, [f"k{p}-{i}:v{p}-{i}" for i in range(10)], key_sep=":",
                    partition=p, headers=["src=cli", f"p={p}"])

    got = consume_partitions(bs, topic, range(3))
    for p in range(3):
        assert [(m.offset(), m.key(), m.value(), m.headers()) for m in got[p]] == [
            (i, f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), [("src", b"cli"), ("p", str(p).encode())])
            for i in range(10)]

    out = cli_consume(bs, topic, count=30, fmt="%p|%o|%k|%v|%h\\n").stdout
    expected = sorted(f"{p}|{i}|k{p}-{i}|v{p}-{i}|src=cli,p={p}" for p in range(3) for i in range(10))
    assert sorted(lines_of(out)) == expected



def test_consume_from_offset_with_count(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique_topic("clioff"), 1)
    cli_produce(bs, topic, [f"v{i}" for i in range(10)])
    # -o N starts at offset N; -n stops after COUNT records even though more exist.
    out = cli_consume(bs, topic, offset=4, count=3, fmt="%o %v\\n").stdout
    assert lines_of(out) == ["4 v4", "5 v5", "6 v6"]
    out = cli_consume(bs, topic, offset="beginning", count=10, fmt="%o:%v\\n").stdout
    assert lines_of(out) == [f"{i}:v{i}" for i in range(10)]


def test_produce_without_key_and_consume_values(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique_topic("clinokey"), 1)
    values = [f"line {i} with spaces and : colons" for i in range(25)]
    cli_produce(bs, topic, values)
    got = consume_partitions(bs, topic, [0])[0]
    assert [(m.key(), m.value().decode()) for m in got] == [(None, v) for v in values]
    out = cli_consume(bs, topic, count=25, fmt="%v\\n").stdout
    assert lines_of(out) == values


def test_consume_from_timestamp(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique_topic("clits"), 1)
    base = 1_700_000_000_000
    produce_all(make_producer(bs), [{"topic": topic, "partition": 0, "value": f"r{i}".encode(),
                                     "timestamp": base + i * 1000} for i in range(10)])
    out = cli_consume(bs, topic, offset=f"@{base + 6500}", count=3, fmt="%o %t %v\\n").stdout
    assert lines_of(out) == [f"{o} {base + o * 1000} r{o}" for o in (7, 8, 9)]


def test_consume_from_end_sees_only_new_records(broker):
    bs = broker.bootstrap
    topic = create_topic(bs, unique_topic("cliend"), 1)
    produce_all(make_producer(bs), [{"topic": topic, "partition": 0, "value": b"old"}])
    proc = subprocess.Popen([WEIR_BIN, "consume", topic, "-b", bs, "-o", "end", "-n", "2",
                             "-f", "%v\\n"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(1.5)  # let it resolve "end" before producing
        produce_all(make_producer(bs), [{"topic": topic, "partition": 0, "value": b"new1"},
                                        {"topic": topic, "partition": 0, "value": b"new2"}])
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert lines_of(out) == ["new1", "new2"]


def test_cluster_info(broker):
    out = run_weir("cluster", "info", "-b", broker.bootstrap).stdout
    assert broker.bootstrap in out or (str(broker.port) in out and "127.0.0.1" in out), out


def test_client_errors_are_one_clear_line():
    # Nothing listens on this port.
    from conftest import free_port
    p = run_weir("topic", "list", "-b", f"127.0.0.1:{free_port()}", check=False, timeout=60)
    assert p.returncode != 0
    assert p.stderr.startswith("weir: "), p.stderr


def test_brokers_flag_takes_a_bootstrap_list(broker):
    """`-b` is a bootstrap list, as Kafka's bootstrap.servers: brokers that are down are
    skipped and the first that answers serves; with none answering the error names the last
    one tried. (Found running the client suites on 3 brokers: `-b` took one address.)"""
    from conftest import free_port
    dead, dead2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    topic = create_topic(broker.bootstrap, unique_topic("blist"), 1)
    out = run_weir("topic", "list", "-b", f"{dead},{broker.bootstrap}", timeout=60).stdout
    assert topic in out, out
    p = run_weir("topic", "list", "-b", f"{dead},{dead2}", check=False, timeout=60)
    assert p.returncode != 0
    assert p.stderr.startswith("weir: ") and dead2 in p.stderr, p.stderr


def test_bench_cluster_mode_prints_both_tables(tmp_path):
    """`weir bench --cluster 3` on a tiny workload: every throughput row carries a figure
    for one broker and for three, and the idle table has its three setups with a CPU
    figure per broker. Figures are printed, never asserted."""
    p = run_weir("bench", "--cluster", "3", "--quick", "--records", "3000",
                 "--idle-seconds", "1", "--cluster-partitions", "30",
                 "--data-dir", str(tmp_path / "bench"), timeout=280)
    rows = [line.split("|")[1:-1] for line in p.stdout.splitlines() if line.startswith("| ")]
    produce = [r for r in rows if r[0].strip().startswith(("produce", "consume"))]
    assert len(produce) == 6, p.stdout
    for r in produce:
        # Both setups measured something; the ratio is printed with two decimals and can
        # round to 0.00 on a tiny run beside a fast single node.
        assert float(r[1].replace(",", "")) > 0 and float(r[3].replace(",", "")) > 0, r
        assert float(r[5]) >= 0, r  # the ratio to one broker
    idle = {r[0].strip(): r for r in rows if r[0].strip().startswith(("1 broker,", "3 brokers,"))}
    assert set(idle) == {"1 broker, 30 partitions × RF 1", "3 brokers, no topics",
                         "3 brokers, 30 partitions × RF 3"}, p.stdout
    assert idle["3 brokers, 30 partitions × RF 3"][1].strip() == "30 / 30 / 30"
    assert len(idle["3 brokers, no topics"][3].split("/")) == 3
