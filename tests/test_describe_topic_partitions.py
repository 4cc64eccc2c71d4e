"""DescribeTopicPartitions (API 75, KIP-966) with the official Java client (kafka-clients 4.3),
whose describeTopics sends it when the broker lists it, paging by partitionSizeLimitPerResponse.

Single node: the broker lists API 75, the Java client describes two topics through pages of two
partitions (its request counter proves API 75 answered, not the Metadata fallback), every
partition led by the broker, its only replica. Three brokers: a topic of RF 3 with
`min.insync.replicas=3` loses a follower (SIGKILL): the ISR falls below min ISR, so the killed
replica becomes an eligible leader replica, which only DescribeTopicPartitions carries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

import kwire
from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic

LIBS = Path(os.environ.get("WEIR_JAVA_LIBS", Path.home() / ".cache" / "weir-java"))
SOURCE = Path(__file__).parent / "java" / "WeirDescribe.java"

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or not (LIBS / "kafka-clients-4.3.0.jar").exists(),
    reason="javac or the Java client jars are missing (scripts/test installs the jars)")


def describe(tmp_path: Path, bootstrap: str, page: int, *topics: str) -> dict:
    """{(topic, partition): {leader, replicas, isr, elr, last_known_elr}} as the Java client
    describes them."""
    classpath = f"{LIBS}/*"
    out = tmp_path / "java-classes"
    if not (out / "WeirDescribe.class").exists():
        subprocess.run(["javac", "-d", str(out), "-cp", classpath, str(SOURCE)],
                       check=True, capture_output=True, timeout=120)
    p = subprocess.run(["java", "-cp", f"{out}:{classpath}", "WeirDescribe", bootstrap,
                        str(page), *topics], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().endswith("OK"), \
        f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    ids = (lambda v: [] if v == "-" else [int(x) for x in v.split(",")])
    rows = {}
    for line in p.stdout.splitlines()[:-1]:
        t, part, leader, replicas, isr, elr, lke = line.split()
        rows[(t, int(part))] = {"leader": int(leader), "replicas": ids(replicas),
                                "isr": ids(isr), "elr": ids(elr), "last_known_elr": ids(lke)}
    return rows


def requests_served(broker, api: str) -> int:
    with urllib.request.urlopen(f"http://{broker.http_address}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf'^weir_requests_total{{api="{api}"}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


@pytest.mark.single_node("reads the one broker's request counters")
def test_the_java_client_pages_topic_descriptions_on_one_node(broker, tmp_path):
    with kwire.Conn(broker.bootstrap) as conn:
        _, error, apis = kwire.api_versions(conn)
    assert error == 0 and apis.get(75) == (0, 0), apis.get(75)
    a, b = sorted([unique_topic("dtp"), unique_topic("dtp")])
    admin = admin_client(broker.bootstrap)
    for name, n in ((a, 3), (b, 2)):
        admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=1)],
                            request_timeout=30)[name].result(30)
    before = requests_served(broker, "DescribeTopicPartitions")
    rows = describe(tmp_path, broker.bootstrap, 2, a, b)
    served = requests_served(broker, "DescribeTopicPartitions") - before
    print(f"\n{len(rows)} partitions described in {served} DescribeTopicPartitions requests")
    assert sorted(rows) == [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)]
    # Five partitions in pages of two: at least three requests, all of API 75.
    assert served >= 3, served
    node = next(iter(rows.values()))["leader"]
    for row in rows.values():
        assert row == {"leader": node, "replicas": [node], "isr": [node], "elr": [],
                       "last_known_elr": []}, row


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={"min.insync.replicas": "2"}).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def test_the_java_client_sees_eligible_leader_replicas_on_three_brokers(cluster, tmp_path):
    everyone = ",".join(b.bootstrap for b in cluster.nodes.values())
    strict, other = sorted([unique_topic("elr"), unique_topic("elr")])
    admin = admin_client(everyone)
    futures = admin.create_topics([
        NewTopic(strict, num_partitions=3, replication_factor=3,
                 config={"min.insync.replicas": "3"}),
        NewTopic(other, num_partitions=2, replication_factor=3)], request_timeout=30)
    for f in futures.values():
        f.result(30)

    def full():
        rows = describe(tmp_path, everyone, 2, strict, other)
        return rows if len(rows) == 5 and all(
            len(r["isr"]) == 3 and r["leader"] in (1, 2, 3) for r in rows.values()) else None

    rows = wait_for("every partition with a leader and a full ISR", full, 60, cluster)
    for (t, _), row in rows.items():
        assert sorted(row["replicas"]) == [1, 2, 3] and row["elr"] == [], (t, row)

    # A replica that leads none of the strict topic's partitions.
    leaders = {rows[(strict, p)]["leader"] for p in range(3)}
    victim = next((i for i in (1, 2, 3) if i not in leaders), None)
    if victim is None:  # each broker leads one: any follower of partition 0
        victim = next(i for i in (1, 2, 3) if i != rows[(strict, 0)]["leader"])
    cluster.nodes[victim].kill9()
    via = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3) if i != victim)

    def shrunk():
        rows = describe(tmp_path, via, 2, strict, other)
        return rows if all(victim not in r["isr"] for r in rows.values()) else None

    rows = wait_for(f"broker {victim} out of every ISR", shrunk, 60, cluster)
    print(f"\nbroker {victim} killed: {sorted(rows.items())}")
    for p in range(3):
        row = rows[(strict, p)]
        # ISR 2 < min ISR 3: the killed replica is an eligible leader replica.
        assert row["elr"] == [victim], row
        assert sorted(row["isr"]) == sorted(set([1, 2, 3]) - {victim}), row
    for p in range(2):
        # min ISR 2 is still met: no ELR.
        assert rows[(other, p)]["elr"] == [], rows[(other, p)]
