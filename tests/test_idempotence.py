"""Idempotent producers: clients' defaults work, and retries after cut connections leave every
record in the log exactly once, in order."""

import socket
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

from conftest import consume_partitions, create_topic, free_port, make_producer, unique_topic


class CuttingProxy:
    """TCP proxy to the broker that loses responses: every `every`-th Produce request is
    delivered to the broker, then the connection is cut before the response gets back, so the
    client must retry a batch the broker already appended."""

    def __init__(self, target_port: int, port: int, every: int = 15):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.every = every
        self.produces = 0
        self.cuts = 0
        self.cutting = True
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            doomed = threading.Event()
            with self.lock:
                self.socks += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream, doomed), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, doomed), daemon=True).start()

    @staticmethod
    def _recv_exact(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _requests(self, client, upstream, doomed):
        try:
            while True:
                head = self._recv_exact(client, 4)
                size = int.from_bytes(head, "big", signed=True)
                body = self._recv_exact(client, size)
                api_key = int.from_bytes(body[:2], "big", signed=True)
                upstream.sendall(head + body)
                if api_key == 0 and self.cutting:
                    with self.lock:
                        self.produces += 1
                        cut = self.produces % self.every == 0
                    if cut:
                        doomed.set()  # the response is dropped
                        time.sleep(0.05)  # let the broker append it
                        self.cuts += 1
                        break
        except OSError:
            pass
        self._close(client, upstream)

    def _responses(self, upstream, client, doomed):
        try:
            while True:
                data = upstream.recv(65536)
                if not data or doomed.is_set():
                    break
                client.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.stop.set()
        self.listener.close()
        with self.lock:
            self._close(*self.socks)


def test_kafka_python_default_producer_is_idempotent(broker):
    """kafka-python's KafkaProducer() defaults to enable_idempotence=True (InitProducerId)."""
    topic = unique_topic("idem-kp")
    create_topic(broker.bootstrap, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    futures = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
               for i in range(1000)]
    producer.flush(30)
    metas = [f.get(timeout=10) for f in futures]
    producer.close()
    assert sorted(m.offset for m in metas if m.partition == 0) == list(range(500))

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    consumer.assign([KTopicPartition(topic, 0), KTopicPartition(topic, 1)])
    got = sorted((m.partition, m.offset, m.value.decode()) for m in consumer)
    consumer.close()
    assert len(got) == 1000
    assert [v for p, _, v in got if p == 0] == [f"v{i}" for i in range(0, 1000, 2)]


@pytest.mark.single_node("a cutting proxy in front of one broker, which advertises the proxy")
def test_retries_through_cut_connections_keep_exactly_once(broker_factory):
    broker_port = free_port()
    proxy_port = free_port()
    b = broker_factory(port=broker_port, extra_args=["--advertise", f"127.0.0.1:{proxy_port}"])
    proxy = CuttingProxy(broker_port, proxy_port)
    topic = unique_topic("idem-cut")
    create_topic(f"127.0.0.1:{broker_port}", topic, partitions=3)
    n = 30_000
    acked: dict[int, tuple[int, int]] = {}
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[int(msg.value())] = (msg.partition(), msg.offset())

    p = make_producer(f"127.0.0.1:{proxy_port}", **{
        "enable.idempotence": True, "linger.ms": 2, "batch.num.messages": 200,
        "message.timeout.ms": 60000, "socket.timeout.ms": 2000,
        "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100,
    })
    try:
        for i in range(n):
            while True:
                try:
                    p.produce(topic, value=str(i).encode(), partition=i % 3, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 500 == 0:
                p.poll(0)
                time.sleep(0.01)  # spread the stream over many cuts
        p.flush(90)
        proxy.cutting = False
        cuts = proxy.cuts
        assert not errors, f"{len(errors)} errors, {len(acked)} acked, {cuts} cuts: {errors[:3]}"
        assert cuts >= 5, f"the proxy cut only {cuts} times"
        assert len(acked) == n
        # Metadata points at the proxy, so the consumer goes through it too (uncut now).
        logs = consume_partitions(f"127.0.0.1:{proxy_port}", topic, [0, 1, 2])
    finally:
        proxy.close()
    for part in range(3):
        values = [int(m.value()) for m in logs[part]]
        assert values == list(range(part, n, 3)), (
            f"partition {part}: {len(values)} records, duplicates "
            f"{len(values) - len(set(values))}, first mismatch at "
            f"{next((i for i, (a, b) in enumerate(zip(values, range(part, n, 3))) if a != b), None)}"
        )
        for m in logs[part]:
            assert acked[int(m.value())] == (part, m.offset())
