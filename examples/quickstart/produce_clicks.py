"""The quick start's producer: page clicks as JSON into the topic `clicks`, keyed by user.

    python produce_clicks.py                 # 100 clicks/s until Ctrl-C
    python produce_clicks.py --count 5000    # a fixed number, then exit

Each click carries the moment it happened (`ts`, UTC), which the SQL source declares as its
event time with a watermark."""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timezone

from confluent_kafka import Producer

USERS = ["ann", "bob", "cyd", "dee", "eve"]
PAGES = ["/", "/pricing", "/docs", "/signup"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="clicks")
    ap.add_argument("--count", type=int, default=0, help="stop after N clicks (0: until Ctrl-C)")
    ap.add_argument("--rate", type=float, default=100.0, help="clicks per second")
    args = ap.parse_args()

    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    sent = 0
    try:
        while args.count == 0 or sent < args.count:
            click = {
                "user_name": random.choice(USERS),
                "page": random.choice(PAGES),
                "ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            }
            producer.produce(args.topic, key=click["user_name"], value=json.dumps(click))
            producer.poll(0)
            sent += 1
            time.sleep(1.0 / args.rate)
    except KeyboardInterrupt:
        pass
    left = producer.flush(30)
    print(f"produced {sent - left} clicks to {args.topic}")


if __name__ == "__main__":
    main()
