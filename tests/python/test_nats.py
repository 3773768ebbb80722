"""NATS JetStream end to end (a stream Pinot never had, through the same plugin interface):
nats-server with JetStream (Debian's package, unpacked by `scripts/nats.sh`; `$RIFFLE_NATS`)
on a loopback port, messages published with JetStream acknowledgements, the riffle binary
queried through pinotdb.

- The seed's transcript walkthrough: the 12 rows on a stream, the table added with
  `riffle AddTable` from the example config with `streamType: nats`.
- A crash: SIGKILL while messages arrive on two streams, then a restart: every row once.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from riffle_harness import (
    LoopbackServer,
    Riffle,
    add_events_table,
    event_rows,
    stream_configs,
    transcript_walkthrough,
)


class Nats(LoopbackServer):
    def __init__(self, log_dir: Path):
        super().__init__(
            "nats-server", "RIFFLE_NATS", log_dir,
            lambda port: ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(log_dir / "js")],
        )
        self.url = f"nats://127.0.0.1:{self.port}"

    def _requests(self, reqs: list[tuple[str, bytes]]) -> list[dict]:
        """Publishes each (subject, payload) with a reply inbox; returns the JSON replies."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()  # INFO
            s.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.py 1\r\n')
            out = []
            for subject, payload in reqs:
                s.sendall(b"PUB %s _INBOX.py %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
                while True:
                    line = f.readline()
                    if line.startswith(b"PING"):
                        s.sendall(b"PONG\r\n")
                    elif line.startswith(b"MSG"):
                        n = int(line.split()[-1])
                        out.append(json.loads(f.read(n + 2)[:-2]))
                        break
                    elif line.startswith(b"-ERR"):
                        raise AssertionError(line)
            return out

    def create_stream(self, name: str) -> None:
        [r] = self._requests([(f"$JS.API.STREAM.CREATE.{name}", json.dumps({"name": name, "subjects": [f"{name}.>"]}).encode())])
        assert "error" not in r, r

    def publish(self, stream: str, values: list[bytes]) -> None:
        acks = self._requests([(f"{stream}.events", v) for v in values])
        assert all("seq" in a for a in acks), acks[:3]

    def stream_configs(self, streams: str, extra: dict | None = None) -> dict:
        return stream_configs("nats", {"stream.nats.topic.name": streams, "stream.nats.url": self.url}, extra)


@pytest.fixture
def nats(tmp_path: Path, request) -> Iterator[Nats]:
    n = Nats(tmp_path)
    request.node.riffle_logs = [n.log]
    try:
        yield n
    finally:
        n.kill()


def test_transcript_through_nats_jetstream(nats: Nats, riffle_factory, tmp_path: Path):
    nats.create_stream("transcript")
    transcript_walkthrough(
        riffle_factory, tmp_path, nats.stream_configs("transcript"), lambda m: nats.publish("transcript", m)
    )


def test_a_crash_while_messages_arrive_keeps_every_row_once(nats: Nats, riffle_factory):
    for s in ("ev0", "ev1"):
        nats.create_stream(s)
    r: Riffle = riffle_factory()
    r.start()
    add_events_table(r, nats.stream_configs("ev0,ev1", {"realtime.segment.flush.threshold.rows": "230"}))

    def put(ids: range) -> None:
        for k in (0, 1):
            nats.publish(f"ev{k}", event_rows(range(ids.start + k, ids.stop, 2), lambda i: f"s{i % 2}"))

    put(range(0, 1000))
    r.wait_count("events", 1000)
    put(range(1000, 1600))
    r.kill()
    put(range(1600, 2000))
    r.start()
    r.wait_count("events", 2000)
    time.sleep(1.0)
    assert r.query("SELECT COUNT(*), COUNT(DISTINCT studentID), SUM(studentID) FROM events") == [
        [2000, 2000, sum(range(2000))]
    ]
    assert dict(r.query("SELECT subject, COUNT(*) FROM events GROUP BY subject")) == {"s0": 1000, "s1": 1000}
