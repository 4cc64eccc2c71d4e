"""Admin edges real client test suites hit: replica assignments on CreatePartitions, broker
configs (described with types, sources, synonyms; altered dynamically and persisted),
deprecated topic keys, and keyless records on compacted topics."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigSource, NewPartitions,
                                  ResourceType)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from confluent_kafka.admin import ConfigResource as CKConfigResource
from confluent_kafka.admin import NewTopic as CKNewTopic

from conftest import (admin_client, create_topic, make_producer, topic_partition_counts,
                      unique_topic, watermarks)


def ck_error(fut):
    with pytest.raises(KafkaException) as ei:
        fut.result(15)
    return ei.value.args[0]


def test_create_partitions_replica_assignment_must_match_the_added_count(broker):
    a = admin_client(broker.bootstrap)
    topic = unique_topic("grow")
    create_topic(broker.bootstrap, topic, partitions=2)
    # 2 → 4 adds two partitions; an assignment of one or three is refused, like Kafka.
    for listed in (1, 3):
        fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0]] * listed)])
        err = ck_error(fs[topic])
        assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
        assert "adds 2" in err.str() and f"lists {listed}" in err.str(), err.str()
    fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0], [5]])])
    err = ck_error(fs[topic])
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    assert "broker 5" in err.str(), err.str()
    assert topic_partition_counts(broker.bootstrap)[topic] == 2
    fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0], [0]])])
    assert fs[topic].result(15) is None
    deadline = time.monotonic() + 10
    while topic_partition_counts(broker.bootstrap)[topic] != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic_partition_counts(broker.bootstrap)[topic] == 4


def test_create_topics_replica_assignment_names_only_this_broker(broker):
    from kafka.admin import NewTopic as KPNewTopic
    from kafka.errors import InvalidReplicationAssignmentError
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        topic = unique_topic("assigned")
        with pytest.raises(InvalidReplicationAssignmentError) as ei:
            kadmin.create_topics([KPNewTopic(topic, -1, -1,
                                             replica_assignments={0: [0], 1: [3]})])
        assert "partition 1" in str(ei.value) and "broker 3" in str(ei.value), ei.value
        kadmin.create_topics([KPNewTopic(topic, -1, -1, replica_assignments={0: [0], 1: [0]})])
        assert topic_partition_counts(broker.bootstrap)[topic] == 2
    finally:
        kadmin.close()


def test_deprecated_topic_keys_are_accepted_with_a_warning(broker):
    a = admin_client(broker.bootstrap)
    topic = unique_topic("old")
    fs = a.create_topics([CKNewTopic(topic, num_partitions=1, replication_factor=1,
                                     config={"message.format.version": "0.10.2"})])
    assert fs[topic].result(15) is None
    res = a.describe_configs([CKConfigResource(ResourceType.TOPIC, topic)])
    cfg = next(iter(res.values())).result(15)
    assert cfg["message.format.version"].value == "0.10.2"
    assert cfg["message.downconversion.enable"].value == "true"
    fs = a.incremental_alter_configs([CKConfigResource(
        ResourceType.TOPIC, topic,
        incremental_configs=[ConfigEntry("message.downconversion.enable", "false",
                                         incremental_operation=AlterConfigOpType.SET)])])
    assert next(iter(fs.values())).result(15) is None
    # A deprecated key still has its value checked.
    fs = a.incremental_alter_configs([CKConfigResource(
        ResourceType.TOPIC, topic,
        incremental_configs=[ConfigEntry("message.format.version", "banana",
                                         incremental_operation=AlterConfigOpType.SET)])])
    assert ck_error(next(iter(fs.values()))).code() == KafkaError.INVALID_CONFIG
    log = broker.log_path.read_text()
    assert "message.format.version is deprecated and ignored" in log, log[-3000:]
    assert "message.downconversion.enable is deprecated and ignored" in log, log[-3000:]


@pytest.mark.parametrize("compression", ["none", "zstd", "gzip", "lz4", "snappy"])
def test_keyless_record_on_a_compacted_topic_is_invalid_record(broker, compression):
    topic = unique_topic("compact")
    create_topic(broker.bootstrap, topic, partitions=2, config={"cleanup.policy": "compact"})
    p = make_producer(broker.bootstrap, **{"compression.type": compression, "linger.ms": 50,
                                            "enable.idempotence": False})
    results = {}

    def cb(name):
        def done(err, msg):
            results[name] = err if err is not None else msg.offset()
        return done

    # One request carries both partitions: the keyless batch fails, the keyed one lands.
    p.produce(topic, value=b"keyed", key=b"k", partition=1, on_delivery=cb("keyed"))
    p.produce(topic, value=b"x" * 200, key=b"k", partition=0, on_delivery=cb("batch-keyed"))
    p.produce(topic, value=b"x" * 200, partition=0, on_delivery=cb("keyless"))
    assert p.flush(15) == 0
    assert results["keyed"] == 0, results
    for name in ("keyless", "batch-keyed"):
        err = results[name]
        assert isinstance(err, KafkaError), results
        assert err.code() == KafkaError.INVALID_RECORD, err
    assert watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 1)


def test_keyless_record_refused_for_kafka_python(broker):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError
    topic = unique_topic("compactkp")
    create_topic(broker.bootstrap, topic, partitions=1,
                 config={"cleanup.policy": "delete,compact"})
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0, compression_type="gzip")
    try:
        with pytest.raises(InvalidRecordError):
            p.send(topic, value=b"no key", partition=0).get(timeout=15)
        md = p.send(topic, value=b"keyed", key=b"k", partition=0).get(timeout=15)
        assert md.offset == 0
    finally:
        p.close()


# ---------------------------------------------------------------------------------------------
# Broker configs.

def ck_broker_configs(a, name="0", **kwargs):
    res = a.describe_configs([CKConfigResource(ResourceType.BROKER, name)], **kwargs)
    return next(iter(res.values())).result(15)


def weir_default(b, *args, check=True):
    """The cluster-wide default broker resource (name ""), through the weir CLI: confluent-kafka
    and kafka-python refuse an empty broker name."""
    from conftest import run_weir
    return run_weir("cluster", "config", *args, "-b", b.bootstrap, "--default", check=check)


def ck_alter_broker(a, name, ops, validate_only=False):
    """ops: {key: value or None (DELETE)}; returns the future's outcome (None or KafkaError)."""
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) if v is not None
               else ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
               for k, v in ops.items()]
    fs = a.incremental_alter_configs([CKConfigResource(ResourceType.BROKER, name,
                                                       incremental_configs=entries)],
                                     validate_only=validate_only)
    try:
        return next(iter(fs.values())).result(15)
    except KafkaException as e:
        return e.args[0]


def test_describe_broker_configs_reports_kafka_keys_types_and_sources(broker_factory):
    b = broker_factory(settings={"log.retention.ms": "3600000", "num.partitions": "3"})
    a = admin_client(b.bootstrap)
    cfg = ck_broker_configs(a)
    assert cfg["advertised.listeners"].value == f"PLAINTEXT://{b.bootstrap}"
    assert cfg["listeners"].value == f"PLAINTEXT://{b.bootstrap}"
    assert cfg["log.dirs"].value == str(b.data_dir)
    assert cfg["node.id"].value == "0" and cfg["broker.id"].value == "0"
    for key in ("num.network.threads", "default.replication.factor", "min.insync.replicas",
                "compression.type", "log.cleaner.threads", "log.flush.interval.messages"):
        assert key in cfg, key
    assert cfg["log.retention.ms"].value == "3600000"
    assert cfg["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert cfg["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert cfg["num.partitions"].is_read_only
    assert not cfg["log.retention.ms"].is_read_only
    assert cfg["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["message.max.bytes"].value == "1048588"
    assert cfg["ssl.key.password"].is_sensitive and cfg["ssl.key.password"].value is None


def test_broker_config_types_and_synonyms_kafka_python(broker_factory):
    b = broker_factory(settings={"log.retention.hours": "2"})
    kadmin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        res = kadmin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")],
                                      include_synonyms=True, config_filter="all")
        cfg = res["broker"]["0"]
        expected = {
            "log.segment.bytes": "INT", "log.retention.ms": "LONG", "log.cleanup.policy": "LIST",
            "auto.create.topics.enable": "BOOLEAN", "log.cleaner.min.cleanable.ratio": "DOUBLE",
            "ssl.key.password": "PASSWORD", "principal.builder.class": "CLASS",
            "offsets.topic.replication.factor": "SHORT", "compression.type": "STRING",
        }
        for key, ty in expected.items():
            assert cfg[key]["config_type"] == ty, (key, cfg[key])
        # log.retention.ms follows log.retention.hours: its synonyms say why.
        ms = cfg["log.retention.ms"]
        assert ms["value"] == "7200000", ms
        assert ms["config_source"] == "STATIC_BROKER_CONFIG", ms
        syn = [(s["name"], s["value"], s["source"]) for s in ms["synonyms"]]
        assert syn[0] == ("log.retention.hours", "2", "STATIC_BROKER_CONFIG"), syn
        assert ("log.retention.hours", "168", "DEFAULT_CONFIG") in syn, syn
        # 'dynamic' keeps only what can be altered at run time.
        res = kadmin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")],
                                      config_filter="dynamic")
        dynamic = res["broker"]["0"]
        assert "log.retention.ms" in dynamic and "message.max.bytes" in dynamic
        assert "num.partitions" not in dynamic and "listeners" not in dynamic
        # Topic configs are typed too.
        topic = unique_topic("typed")
        create_topic(b.bootstrap, topic)
        res = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                      include_synonyms=True, config_filter="all")
        t = res["topic"][topic]
        assert t["segment.bytes"]["config_type"] == "INT"
        assert t["retention.ms"]["config_type"] == "LONG"
        assert t["cleanup.policy"]["config_type"] == "LIST"
        assert t["min.cleanable.dirty.ratio"]["config_type"] == "DOUBLE"
        assert t["preallocate"]["config_type"] == "BOOLEAN"
        assert t["retention.ms"]["value"] == "7200000"
        assert t["retention.ms"]["config_source"] == "STATIC_BROKER_CONFIG"
    finally:
        kadmin.close()


def test_broker_config_documentation_on_the_wire(broker):
    """DescribeConfigs v3+ with include_documentation (only the Java client asks for it)."""
    import kwire
    conn = kwire.Conn(broker.bootstrap)
    try:
        body = (kwire.i32(1) + kwire.i8(4) + kwire.string("0") + kwire.i32(1)
                + kwire.string("message.max.bytes") + kwire.i8(1) + kwire.i8(1))
        r = conn.request(kwire.request_header_v1(32, 3, 5), body)
        assert r.i32() == 5, "correlation id"
        r.i32()  # throttle
        assert r.i32() == 1
        assert r.i16() == 0, "error code"
        r.string()
        assert r.i8() == 4
        assert r.string() == "0"
        assert r.i32() == 1
        assert r.string() == "message.max.bytes"
        assert r.string() == "1048588"
        assert r.i8() == 0, "read_only"
        assert r.i8() == 5, "DEFAULT_CONFIG"
        assert r.i8() == 0, "sensitive"
        n = r.i32()
        for _ in range(n):
            r.string(); r.string(); r.i8()
        assert r.i8() == 3, "INT"
        doc = r.string()
        assert doc and "batch" in doc, doc
    finally:
        conn.close()


def test_dynamic_broker_configs_apply_at_once_persist_and_fall_back(broker_factory):
    b = broker_factory(settings={"log.retention.check.interval.ms": "200",
                                 "log.segment.bytes": "1024", "message.max.bytes": "1048588"})
    a = admin_client(b.bootstrap)
    follows, keeps = unique_topic("follows"), unique_topic("keeps")
    create_topic(b.bootstrap, follows)
    create_topic(b.bootstrap, keeps, config={"retention.ms": "-1"})
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    p = make_producer(b.bootstrap)
    for t in (follows, keeps):
        # One batch per request, so that 1 KiB segments roll between them.
        for i in range(30):
            p.produce(t, value=b"v" * 200, key=b"k%d" % i, timestamp=old)
            assert p.flush(15) == 0
    assert watermarks(b.bootstrap, follows, 0) == (0, 30)

    # A changed log.retention.ms applies to topics without an override, at the next check.
    weir_default(b, "set", "log.retention.ms=3600000")
    deadline = time.monotonic() + 10
    while watermarks(b.bootstrap, follows, 0)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watermarks(b.bootstrap, follows, 0)[0] > 0
    assert watermarks(b.bootstrap, keeps, 0)[0] == 0

    # message.max.bytes applies to the next produce: the default level, then this broker's.
    def produce_big():
        out = {}
        p.produce(follows, value=b"x" * 5000, key=b"big",
                  on_delivery=lambda err, msg: out.setdefault("err", err))
        p.flush(15)
        return out["err"]

    weir_default(b, "set", "message.max.bytes=2000")
    err = produce_big()
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    cfg = ck_broker_configs(a)
    assert cfg["message.max.bytes"].value == "2000"
    assert cfg["message.max.bytes"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert ck_alter_broker(a, "0", {"message.max.bytes": "100000"}) is None
    assert produce_big() is None
    cfg = ck_broker_configs(a)
    assert cfg["message.max.bytes"].value == "100000"
    assert cfg["message.max.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    res = a.describe_configs([CKConfigResource(ResourceType.TOPIC, follows)])
    topic_cfg = next(iter(res.values())).result(15)
    assert topic_cfg["max.message.bytes"].value == "100000"
    assert topic_cfg["max.message.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    # The default resource shows only what is set on it.
    default = weir_default(b, "show").stdout.splitlines()
    assert [line.split()[:3] for line in default[1:]] == [
        ["log.retention.ms", "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"],
        ["message.max.bytes", "2000", "DYNAMIC_DEFAULT_BROKER_CONFIG"]], default

    # validate_only changes nothing; bad values and read-only keys are refused.
    assert ck_alter_broker(a, "0", {"message.max.bytes": "5"}, validate_only=True) is None
    assert ck_broker_configs(a)["message.max.bytes"].value == "100000"
    err = ck_alter_broker(a, "0", {"log.segment.bytes": "big"})
    assert err.code() == KafkaError.INVALID_CONFIG, err
    err = ck_alter_broker(a, "0", {"log.segment.bytes": "0"})
    assert err.code() == KafkaError.INVALID_CONFIG, err
    err = ck_alter_broker(a, "0", {"num.partitions": "4"})
    assert err.code() == KafkaError.INVALID_REQUEST, err
    assert "num.partitions" in err.str()

    # Dynamic values survive a restart and beat a new static value.
    b.settings["message.max.bytes"] = "3000"
    b.restart()
    a = admin_client(b.bootstrap)
    cfg = ck_broker_configs(a)
    assert cfg["message.max.bytes"].value == "100000"
    assert cfg["message.max.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    # DELETE falls back a layer at a time: the cluster-wide default, then the static value.
    assert ck_alter_broker(a, "0", {"message.max.bytes": None}) is None
    assert ck_broker_configs(a)["message.max.bytes"].value == "2000"
    weir_default(b, "set", "--delete", "message.max.bytes")
    cfg = ck_broker_configs(a)
    assert cfg["message.max.bytes"].value == "3000"
    assert cfg["message.max.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value


def test_legacy_alter_configs_replaces_the_broker_layer(broker):
    a = admin_client(broker.bootstrap)
    assert ck_alter_broker(a, "0", {"log.cleaner.threads": "2", "log.retention.bytes": "9999"}) \
        is None
    fs = a.alter_configs([CKConfigResource(ResourceType.BROKER, "0",
                                           set_config={"log.retention.bytes": "5000"})])
    assert next(iter(fs.values())).result(15) is None
    cfg = ck_broker_configs(a)
    assert cfg["log.retention.bytes"].value == "5000"
    assert cfg["log.cleaner.threads"].value == "1"
    assert cfg["log.cleaner.threads"].source == ConfigSource.DEFAULT_CONFIG.value


def test_weir_cluster_config_cli(broker):
    from conftest import run_weir
    run_weir("cluster", "config", "set", "-b", broker.bootstrap, "--default",
             "log.retention.bytes=12345")
    out = run_weir("cluster", "config", "show", "-b", broker.bootstrap).stdout
    (line,) = [l for l in out.splitlines() if l.startswith("log.retention.bytes ")]
    assert "12345" in line and "DYNAMIC_DEFAULT_BROKER_CONFIG" in line, line
    p = run_weir("cluster", "config", "set", "-b", broker.bootstrap, "num.partitions=2",
                 check=False)
    assert p.returncode != 0 and "INVALID_REQUEST" in p.stderr, p.stderr
    run_weir("cluster", "config", "set", "-b", broker.bootstrap, "--default",
             "--delete", "log.retention.bytes")
    out = run_weir("cluster", "config", "show", "-b", broker.bootstrap, "--default").stdout
    assert "log.retention.bytes" not in out, out


def test_max_connections_can_be_lowered_and_raised_at_run_time(broker):
    import kwire
    from conftest import run_weir
    run_weir("cluster", "config", "set", "-b", broker.bootstrap, "max.connections=1")
    # The broker takes the permits out as the CLI's own connection ends.
    time.sleep(1.0)
    first = kwire.Conn(broker.bootstrap)
    second = kwire.Conn(broker.bootstrap)
    try:
        assert kwire.api_versions(first)[1] == 0
        # The second connection waits in the listen backlog: not answered...
        second.send_raw(kwire.frame(kwire.request_header_v1(kwire.API_VERSIONS, 0, 3)))
        assert second.wait_closed(1.0) == "open"
        # ...until the first one ends.
        first.close()
        second.sock.settimeout(5)
        assert len(second.recv_frame()) > 0
    finally:
        first.close()
        second.close()
    run_weir("cluster", "config", "set", "-b", broker.bootstrap, "max.connections=100")
    time.sleep(0.3)
    conns = [kwire.Conn(broker.bootstrap) for _ in range(3)]
    try:
        for c in conns:
            assert kwire.api_versions(c)[1] == 0
    finally:
        for c in conns:
            c.close()
