#!/usr/bin/env python3
"""Event generator from Pinot's "Ingest streaming data" guide.

Prints one JSON event per line: {"ts": <epoch ms now>, "uuid": <uuid4>, "count": <0..1000>}.
Without options it runs forever, as in the docs (pipe it into a Kafka producer or a file).

Options (for tests):
  --count N   stop after N events
  --out FILE  append to FILE instead of writing to stdout
"""

import argparse
import datetime
import json
import random
import sys
import uuid


def main():
    parser = argparse.ArgumentParser(description="Generate events for the 'events' table.")
    parser.add_argument("--count", type=int, default=None,
                        help="number of events to write (default: run forever)")
    parser.add_argument("--out", default=None,
                        help="file to append the events to (default: stdout)")
    args = parser.parse_args()
    if args.count is not None and args.count < 0:
        parser.error("--count must not be negative")

    out = open(args.out, "a", encoding="utf-8") if args.out else sys.stdout
    written = 0
    try:
        while args.count is None or written < args.count:
            ts = int(datetime.datetime.now().timestamp() * 1000)
            id = str(uuid.uuid4())
            count = random.randint(0, 1000)
            print(json.dumps({"ts": ts, "uuid": id, "count": count}), file=out, flush=args.count is None)
            written += 1
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
