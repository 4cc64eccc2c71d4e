"""Issue 11: a broker beyond the voters joins a running cluster, takes partitions, restarts,
is drained and removed, all with clients running.

3 voters, an idempotent acks=all producer (`Recorder`) and a consumer group run throughout.
Broker 4 is not in `controller.quorum.voters`: it starts with `weir.internal.listen`, registers
through the voters, becomes an openraft learner (an observer in `weir cluster info`), gets
replicas of a new RF 3 topic, and serves clients. `weir cluster reassign` moves partitions onto
it (one with it as leader); it is SIGKILLed and restarted while it holds them; then
`weir cluster reassign --drain 4`, `weir cluster unregister 4` (refused before the drain, and
always for a voter), and it stops. Every acknowledged record is read back once at its offset,
and the group consumed every one of them.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import Broker, admin_client, free_port, run_weir, unique_topic
from test_cluster_admin import check_read_back, create, everyone, in_sync, start_cluster
from test_cluster_replication import PARTITIONS, Recorder, partitions_of


class GroupConsumer:
    """A consumer group member reading the topic in a thread; remembers (partition, offset) ->
    value of everything it was given."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": unique_topic("grow-g"),
            "auto.offset.reset": "earliest", "enable.auto.commit": True,
            "auto.commit.interval.ms": 500, "topic.metadata.refresh.interval.ms": 1000,
        })
        self.consumer.subscribe([topic])
        self.seen: dict[tuple[int, int], bytes] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            for m in self.consumer.consume(500, 0.5):
                if m.error() is None:
                    self.seen[(m.partition(), m.offset())] = m.value()
                elif m.error().code() != KafkaError._PARTITION_EOF:
                    self.errors.append(str(m.error()))
        self.consumer.close()

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(60)


def all_replicas(cluster: Cluster, via: int) -> dict[tuple[str, int], list[int]]:
    """{(topic, partition): replicas} of every topic, internal ones included."""
    md = admin_client(cluster.nodes[via].bootstrap).list_topics(timeout=10)
    return {(t, p.id): list(p.replicas) for t, tm in md.topics.items()
            for p in tm.partitions.values()}


def progress(rec: Recorder, group: GroupConsumer, cluster: Cluster, what: str, n: int = 200):
    """Both clients move on: n more acknowledgements and n more consumed records."""
    acked, seen = len(rec.acked), len(group.seen)
    wait_for(f"{n} more acknowledged and consumed records {what}",
             lambda: len(rec.acked) >= acked + n and len(group.seen) >= seen + n, 90, cluster)


def test_a_broker_beyond_the_voters_joins_takes_partitions_restarts_and_is_drained_and_removed(
        tmp_path):
    c = start_cluster(tmp_path)
    try:
        topic = unique_topic("grow")
        create(c, topic)
        in_sync(c, 1, topic)
        rec = Recorder(everyone(c), topic).start()
        group = GroupConsumer(everyone(c), topic).start()
        progress(rec, group, c, "before broker 4 starts", 300)

        # Broker 4 joins: not a voter, its own internal listener.
        c.nodes[4] = Broker(tmp_path / "node4-data", tmp_path, name="node4", settings={
            "node.id": "4", "controller.quorum.voters": c.voters,
            "weir.internal.listen": f"127.0.0.1:{free_port()}", "min.insync.replicas": "2"})
        c.nodes[4].start()
        wait_for("broker 4 registered and unfenced, an observer of the quorum", lambda: (
            (info := c.info(1)) and states(info) == {i: "unfenced" for i in (1, 2, 3, 4)}
            and 4 in info["observers"] and 4 not in info["voters"]), 60, c)
        info = c.info(4)  # asked of the new broker: its own image came from the metadata log
        assert set(info["voters"]) == {1, 2, 3} and set(info["observers"]) == {4}, info
        assert states(info) == {i: "unfenced" for i in (1, 2, 3, 4)}, info
        admin = admin_client(c.nodes[4].bootstrap)
        assert set(admin.list_topics(timeout=10).brokers) == {1, 2, 3, 4}
        described = admin.describe_cluster().result(30)
        assert {n.id for n in described.nodes} == {1, 2, 3, 4}, described

        # A new RF 3 topic over 4 brokers puts replicas on it, and it serves clients.
        spread = unique_topic("spread")
        admin.create_topics([NewTopic(spread, num_partitions=4, replication_factor=3)],
                            request_timeout=30)[spread].result(30)
        md = wait_for(f"{spread} led", lambda: (
            (t := admin_client(c.nodes[1].bootstrap).list_topics(spread, timeout=10)
             .topics.get(spread)) and len(t.partitions) == 4
            and all(p.leader >= 0 for p in t.partitions.values()) and t), 60, c)
        on4 = [p.id for p in md.partitions.values() if 4 in p.replicas]
        assert len(on4) >= 2, {p.id: p.replicas for p in md.partitions.values()}
        led4 = [p.id for p in md.partitions.values() if p.leader == 4]
        assert led4, {p.id: p.leader for p in md.partitions.values()}
        run_weir("produce", spread, "-b", c.nodes[4].bootstrap, "--partition", str(led4[0]),
                 input="via-4\n")
        got = run_weir("consume", spread, "-b", c.nodes[4].bootstrap, "--partition",
                       str(led4[0]), "--offset", "beginning", "--count", "1",
                       timeout=30).stdout
        assert "via-4" in got, got

        # Move partitions of the running topic onto it: 0 with it as preferred leader.
        for part, replicas in ((0, "4,1,2"), (1, "2,4,3")):
            out = run_weir("cluster", "reassign", "--topic", topic, "--partition", str(part),
                           "--replicas", replicas, "--wait", "60", "-b", c.nodes[1].bootstrap,
                           timeout=90).stdout
            assert "complete" in out, out
        run_weir("cluster", "elect-leaders", "--topic", topic, "--partition", "0",
                 "-b", c.nodes[2].bootstrap, timeout=60)
        p = wait_for("partition 0 led by broker 4, partition 1 on it", lambda: (
            (p := partitions_of(c, 3, topic)) and p[0][0] == 4 and p[0][1] == [1, 2, 4]
            and p[0][2] == [1, 2, 4] and p[1][1] == [2, 3, 4] and p[1][2] == [2, 3, 4]
            and p), 60, c)
        progress(rec, group, c, "with broker 4 leading partition 0")

        # Unregistering is refused while it is live and holds replicas, and for a voter.
        bad = run_weir("cluster", "unregister", "4", "-b", c.nodes[1].bootstrap, check=False)
        assert bad.returncode != 0 and "INVALID_REQUEST" in bad.stdout + bad.stderr, bad
        assert "holds" in bad.stdout + bad.stderr, bad
        bad = run_weir("cluster", "unregister", "2", "-b", c.nodes[1].bootstrap, check=False)
        assert bad.returncode != 0 and "voter" in bad.stdout + bad.stderr, bad

        # SIGKILL and restart while it holds replicas (and leads one): it comes back from its
        # own logs and metadata log, rejoins the ISRs and is given its leadership back.
        c.nodes[4].kill9()
        wait_for("partition 0 led elsewhere", lambda: (
            (p := partitions_of(c, 1, topic)) and p[0][0] != 4), 60, c)
        progress(rec, group, c, "while broker 4 is down", 100)
        c.nodes[4].start()
        in_sync(c, 1, topic)
        run_weir("cluster", "elect-leaders", "--topic", topic, "--partition", "0",
                 "-b", c.nodes[1].bootstrap, timeout=60)
        wait_for("broker 4 leads partition 0 again", lambda: (
            (p := partitions_of(c, 2, topic)) and p[0][0] == 4), 60, c)
        progress(rec, group, c, "after broker 4 restarted")

        # Drain it, wait until it holds nothing, unregister it, stop it.
        out = run_weir("cluster", "reassign", "--drain", "4", "--wait", "90",
                       "-b", c.nodes[1].bootstrap, timeout=120).stdout
        assert "complete" in out, out
        wait_for("broker 4 holding no replica", lambda: not [
            tp for tp, reps in all_replicas(c, 1).items() if 4 in reps], 60, c)
        progress(rec, group, c, "after the drain")
        out = run_weir("cluster", "unregister", "4", "-b", c.nodes[2].bootstrap).stdout
        assert "broker 4 unregistered" in out, out
        info = wait_for("broker 4 gone from the brokers and the observers", lambda: (
            (info := c.info(1)) and 4 not in info["brokers"] and not info["observers"]
            and info), 30, c)
        assert set(admin_client(c.nodes[3].bootstrap).list_topics(timeout=10).brokers) == \
            {1, 2, 3}
        assert c.nodes[4].stop() == 0, c.nodes[4].log_tail()
        time.sleep(2)  # a stopped, unregistered broker stays out
        assert 4 not in c.info(3)["brokers"]
        again = run_weir("cluster", "unregister", "4", "-b", c.nodes[1].bootstrap, check=False)
        assert again.returncode != 0 and "BROKER_ID_NOT_REGISTERED" in again.stdout + again.stderr
        progress(rec, group, c, "after broker 4 left")

        rec.finish()
        check_read_back(c, rec, topic)
        wait_for("the group consumed every acknowledged record", lambda: all(
            (p, off) in group.seen for p, off, _ in rec.acks()), 60, c)
        group.finish()
        assert not group.errors, group.errors[:5]
        for value, (p, off, _) in rec.acked.items():
            assert group.seen[(p, off)] == value, (value, p, off, group.seen[(p, off)])
        print(f"\n{len(rec.acked)} acknowledged records read back once each; the group "
              f"consumed {len(group.seen)} offsets of {PARTITIONS} partitions")
    finally:
        c.kill_all()
