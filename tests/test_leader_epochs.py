"""Leader epochs in the log (KIP-101): batches produced by a real client are stamped with the
partition's epoch, OffsetForLeaderEpoch answers from the leader-epoch checkpoint (raw wire,
v2-4), ListOffsets v4 checks the current leader epoch, and all of it survives kill -9
(`weir debug verify` checks the checkpoint against the batches)."""

import kwire
from conftest import create_topic, make_consumer, make_producer, produce_all, run_weir, unique_topic

API_LIST_OFFSETS = 2
API_OFFSET_FOR_LEADER_EPOCH = 23
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
UNKNOWN_TOPIC_OR_PARTITION = 3


def offset_for_leader_epoch(bootstrap, topic, asks, version=3):
    """asks: [(partition, current_leader_epoch, leader_epoch)] → [(error, epoch, end_offset)]."""
    assert version in (2, 3)  # the non-flexible versions
    body = b""
    if version >= 3:
        body += kwire.i32(-1)  # replica_id: a consumer
    body += kwire.i32(1) + kwire.string(topic) + kwire.i32(len(asks))
    for partition, current, epoch in asks:
        body += kwire.i32(partition) + kwire.i32(current) + kwire.i32(epoch)
    with kwire.Conn(bootstrap) as c:
        r = c.request(kwire.request_header_v1(API_OFFSET_FOR_LEADER_EPOCH, version, 7), body)
    assert r.i32() == 7
    r.i32()  # throttle
    assert r.i32() == 1 and r.string() == topic
    out = []
    for _ in range(r.i32()):
        err, partition, epoch, end = r.i16(), r.i32(), r.i32(), r.i64()
        out.append((partition, err, epoch, end))
    assert r.remaining() == 0
    return [(err, epoch, end) for _, err, epoch, end in out]


def list_offsets_latest(bootstrap, topic, current_leader_epoch):
    body = (kwire.i32(-1) + kwire.i8(0) + kwire.i32(1) + kwire.string(topic) + kwire.i32(1)
            + kwire.i32(0) + kwire.i32(current_leader_epoch) + kwire.i64(-1))
    with kwire.Conn(bootstrap) as c:
        r = c.request(kwire.request_header_v1(API_LIST_OFFSETS, 4, 9), body)
    assert r.i32() == 9
    r.i32()
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0
    err, _ts, offset, epoch = r.i16(), r.i64(), r.i64(), r.i32()
    return err, offset, epoch


def test_epochs_from_a_real_producer_survive_kill9(broker):
    topic = unique_topic("epochs")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = make_producer(broker.bootstrap, acks="all")
    produce_all(p, [dict(topic=topic, partition=0, value=b"v%d" % i) for i in range(10)])

    # The stamp the consumer sees is the broker's epoch, not the producer's -1.
    c = make_consumer(broker.bootstrap, **{"group.id": topic, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = []
    try:
        while len(seen) < 10:
            m = c.poll(10)
            assert m is not None, "timed out consuming"
            assert m.error() is None, m.error()
            seen.append(m.leader_epoch())
    finally:
        c.close()
    assert seen == [0] * 10

    asks = [(0, -1, 0), (0, 0, 0), (0, -1, 1), (0, 1, 0), (1, 0, 0), (5, -1, 0)]
    want = [(0, 0, 10), (0, 0, 10), (0, -1, -1), (UNKNOWN_LEADER_EPOCH, -1, -1), (0, 0, 0),
            (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]
    for version in (2, 3):
        assert offset_for_leader_epoch(broker.bootstrap, topic, asks, version) == want
    assert list_offsets_latest(broker.bootstrap, topic, 0) == (0, 10, 0)
    assert list_offsets_latest(broker.bootstrap, topic, 1)[0] == UNKNOWN_LEADER_EPOCH

    checkpoint = broker.partition_dir(topic, 0) / "leader-epoch-checkpoint"
    assert checkpoint.read_text() == "0\n1\n0 0\n"

    broker.kill9()
    verify = run_weir("debug", "verify", "--data-dir", str(broker.data_dir), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # A damaged checkpoint is a problem for the verifier and is rebuilt from the batches.
    checkpoint.write_text("0\n3\n0 0\n")
    verify = run_weir("debug", "verify", "--data-dir", str(broker.data_dir), check=False)
    assert verify.returncode != 0 and "leader-epoch-checkpoint" in verify.stdout + verify.stderr
    broker.start()
    assert offset_for_leader_epoch(broker.bootstrap, topic, asks) == want
    assert checkpoint.read_text() == "0\n1\n0 0\n"
    broker.stop()
    verify = run_weir("debug", "verify", "--data-dir", str(broker.data_dir), "--strict",
                      check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
