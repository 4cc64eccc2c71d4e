"""The new consumer group protocol (KIP-848): server-side assignment with librdkafka's
`group.protocol=consumer`."""

import time

from confluent_kafka import Consumer, TopicPartition

from conftest import create_topic, make_producer, produce_all, run_weir, unique_topic


def consumer(bootstrap, group, **conf):
    base = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    base.update(conf)
    return Consumer(base)


def poll_until(consumers, done, timeout=20.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            for m in c.consume(200, 0.1):
                assert m.error() is None, m.error()
                seen.append((c, m))
        if done(seen):
            return seen
    raise AssertionError(f"timed out; assignments {[sorted(tp.partition for tp in c.assignment()) for c in consumers]}")


def assignments(consumers):
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def test_three_members_share_partitions_and_take_over_on_leave(broker):
    topic = create_topic(broker.bootstrap, unique_topic("k848"), 6)
    produce_all(make_producer(broker.bootstrap),
                [{"topic": topic, "value": str(i).encode(), "partition": i % 6} for i in range(600)])
    group = unique_topic("g848")
    cs = [consumer(broker.bootstrap, group) for _ in range(3)]
    for c in cs:
        c.subscribe([topic])
    t0 = time.monotonic()
    seen = poll_until(cs, lambda s: len({m.value() for _, m in s}) == 600)
    print(f"\nKIP-848: 3 members consumed 600 records in {time.monotonic() - t0:.2f}s")
    # Balanced: every member ends with exactly two partitions, all six covered once.
    deadline = time.monotonic() + 15
    while sorted(map(len, assignments(cs))) != [2, 2, 2] and time.monotonic() < deadline:
        for c in cs:
            c.poll(0.1)
    owned = assignments(cs)
    assert sorted(map(len, owned)) == [2, 2, 2], owned
    assert sorted(p for ps in owned for p in ps) == list(range(6))
    # Every record was delivered (a partition that moved before anything was committed is
    # read again by its new owner, so deliveries may exceed 600).
    assert {m.value() for _, m in seen} == {str(i).encode() for i in range(600)}
    # Each owner reads its partitions to the end, then commits its own positions.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        positions = [tp.offset for c in cs for tp in c.position(c.assignment())]
        if positions == [100] * 6:
            break
        for c in cs:
            c.consume(200, 0.1)
    assert positions == [100] * 6, positions
    for c in cs:
        c.commit(asynchronous=False)

    leaving = cs.pop()
    moved = assignments([leaving])[0]
    leaving.close()
    t0 = time.monotonic()
    while sorted(map(len, assignments(cs))) != [3, 3] and time.monotonic() - t0 < 20:
        for c in cs:
            c.poll(0.1)
    print(f"KIP-848: takeover after a clean leave took {time.monotonic() - t0:.2f}s")
    owned = assignments(cs)
    assert sorted(p for ps in owned for p in ps) == list(range(6)), owned
    assert set(moved) <= set(owned[0]) | set(owned[1])

    # Offsets committed by the new protocol's members are visible to the group.
    committed = cs[0].committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
    assert [tp.offset for tp in committed] == [100] * 6
    for c in cs:
        c.close()


def test_cli_describes_and_guards_a_consumer_protocol_group(broker):
    """`weir group describe` reads a KIP-848 group through ConsumerGroupDescribe
    (DescribeGroups reports it Dead), and `weir group reset-offsets` refuses it while it
    has members."""
    topic = create_topic(broker.bootstrap, unique_topic("k848cli"), 4)
    produce_all(make_producer(broker.bootstrap),
                [{"topic": topic, "value": str(i).encode(), "partition": i % 4} for i in range(40)])
    group = unique_topic("g848cli")
    cs = [consumer(broker.bootstrap, group, **{"client.id": f"cli-{i}"}) for i in range(2)]
    for c in cs:
        c.subscribe([topic])
    poll_until(cs, lambda s: len({m.value() for _, m in s}) == 40)
    deadline = time.monotonic() + 15
    while sorted(map(len, assignments(cs))) != [2, 2] and time.monotonic() < deadline:
        for c in cs:
            c.poll(0.1)
    owned = assignments(cs)
    assert sorted(map(len, owned)) == [2, 2], owned

    out = run_weir("group", "describe", group, "-b", broker.bootstrap).stdout
    summary = dict(line.split(None, 1) for line in out.split("\n\n")[0].splitlines()[1:])
    assert summary["STATE"].strip() == "Stable", out
    assert summary["GROUP-PROTOCOL"].strip() == "consumer (KIP-848)", out
    assert summary["MEMBERS"].strip() == "2", out
    assert int(summary["GROUP-EPOCH"]) >= 1, out
    members = out.split("\nMEMBERS\n")[1].split("\nOFFSETS\n")[0].splitlines()[1:]
    assert sorted(m.split()[1] for m in members) == ["cli-0", "cli-1"], out
    # Each member's row names its partitions; the offsets table gives each an owner.
    owners = {}
    for row in out.split("\nOFFSETS\n")[1].splitlines()[1:]:
        t, p, _cur, end, _lag, member = row.split()
        assert t == topic and end == "10", out
        owners[int(p)] = member
    assert sorted(owners) == [0, 1, 2, 3] and "-" not in owners.values(), out
    assert len(set(owners.values())) == 2, out

    refused = run_weir("group", "reset-offsets", group, "--topic", topic, "--to-earliest",
                       "-b", broker.bootstrap, check=False)
    assert refused.returncode != 0 and "is active" in refused.stderr, refused
    for c in cs:
        c.close()
