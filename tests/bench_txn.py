"""Milliseconds per transaction with confluent-kafka, with and without offsets.

Not a test (pytest does not collect it): a measurement. It starts `weir serve` (WEIR_BIN, or
the debug build) on a temporary directory and times N transactions of 3 records to 3
partitions, first plain, then each with `send_offsets_to_transaction` as a
consume-transform-produce loop sends them.

    WEIR_BIN=~/.cache/weir-target/release/weir ~/.cache/weir-venv/bin/python tests/bench_txn.py [N]
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from conftest import Broker, create_topic, unique_topic  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = Path(tempfile.mkdtemp(prefix="weir-bench-txn-"))
    broker = Broker(work / "data", work).start()
    try:
        topic = create_topic(broker.bootstrap, unique_topic("txn-bench"), 3)
        p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "bench",
                      "linger.ms": 5})
        p.init_transactions(30)
        meta = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": "bench"}).consumer_group_metadata()
        for mode in ("plain", "with offsets"):
            started = time.monotonic()
            for i in range(n):
                p.begin_transaction()
                for partition in range(3):
                    p.produce(topic, value=b"x", partition=partition)
                if mode == "with offsets":
                    p.send_offsets_to_transaction([TopicPartition(topic, 0, i)], meta, 30)
                p.commit_transaction(30)
            ms = (time.monotonic() - started) / n * 1000
            print(f"{mode}: {ms:.2f} ms per transaction ({n} transactions)")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
