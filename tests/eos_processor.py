"""A consume-transform-produce processor with exactly-once semantics, run as its own process
by test_exactly_once.py so the test can SIGKILL it.

    python eos_processor.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID [BATCH]

It reads INPUT with read_committed, writes "partition:offset:value" for each record to the
same partition of OUTPUT, and commits its input offsets inside the same transaction
(send_offsets_to_transaction), batch by batch, until killed.
"""

import sys

from confluent_kafka import Consumer, KafkaException, Producer


def main():
    bootstrap, source, sink, group, txn_id = sys.argv[1:6]
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 500
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "linger.ms": 5,
        "transaction.timeout.ms": 30000,
    })
    # Fences the previous incarnation and aborts its open transaction (if any) before this
    # one reads a single committed offset.
    producer.init_transactions(60)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        # Static membership: a restarted processor takes its old place at once instead of
        # waiting for the killed one's session to time out.
        "group.instance.id": f"{txn_id}-member",
        "session.timeout.ms": 10000,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([source])
    print("processor ready", flush=True)
    while True:
        msgs = consumer.consume(batch, 0.5)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        producer.begin_transaction()
        for m in msgs:
            value = f"{m.partition()}:{m.offset()}:{m.value().decode()}".encode()
            producer.produce(sink, key=m.key(), value=value, partition=m.partition())
        try:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                producer.abort_transaction(30)
                # Rewind to the last committed offsets and try again.
                committed = consumer.committed(consumer.assignment(), 30)
                for tp in committed:
                    if tp.offset >= 0:
                        consumer.seek(tp)
                continue
            raise


if __name__ == "__main__":
    main()
