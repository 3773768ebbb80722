"""Redis Streams end to end (a stream Pinot never had, through the same plugin interface):
redis-server (Debian's package, unpacked by `scripts/redis.sh`; `$RIFFLE_REDIS` starts it)
on a loopback port, entries added with XADD, the riffle binary queried through pinotdb.

- The seed's transcript walkthrough: the 12 rows as stream entries, the table added with
  `riffle AddTable` from the example config with `streamType: redis`.
- A crash: SIGKILL while entries arrive, then a restart: every row exactly once.
"""

from __future__ import annotations

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


class Redis(LoopbackServer):
    def __init__(self, log_dir: Path):
        super().__init__(
            "redis-server", "RIFFLE_REDIS", log_dir,
            lambda port: ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(log_dir)],
        )
        self.url = f"redis://127.0.0.1:{self.port}"

    def xadd(self, key: str, values: list[bytes]) -> None:
        """XADD key * value <v>, pipelined, each reply checked."""
        def cmd(*args: bytes) -> bytes:
            out = b"*%d\r\n" % len(args)
            for a in args:
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            return out

        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"".join(cmd(b"XADD", key.encode(), b"*", b"value", v) for v in values))
            f = s.makefile("rb")
            for _ in values:
                line = f.readline()
                assert line.startswith(b"$"), line
                f.readline()

    def stream_configs(self, key: str, extra: dict | None = None) -> dict:
        return stream_configs("redis", {"stream.redis.topic.name": key, "stream.redis.url": self.url}, extra)


@pytest.fixture
def redis(tmp_path: Path, request) -> Iterator[Redis]:
    r = Redis(tmp_path)
    request.node.riffle_logs = [r.log]
    try:
        yield r
    finally:
        r.kill()


def test_transcript_through_redis_streams(redis: Redis, riffle_factory, tmp_path: Path):
    transcript_walkthrough(
        riffle_factory,
        tmp_path,
        redis.stream_configs("transcript-topic"),
        lambda m: redis.xadd("transcript-topic", m),
    )


def test_a_crash_while_entries_arrive_keeps_every_row_once(redis: Redis, riffle_factory):
    def rows(ids: range) -> list[bytes]:
        return event_rows(ids, lambda i: f"k{i % 2}")

    r: Riffle = riffle_factory()
    r.start()
    add_events_table(r, redis.stream_configs("ev-0,ev-1", {"realtime.segment.flush.threshold.rows": "230"}))
    for i in range(2):
        redis.xadd(f"ev-{i}", [x for j, x in zip(range(0, 2000), rows(range(0, 2000))) if j % 2 == i])
    r.wait_count("events", 2000)
    for i in range(2):
        redis.xadd(f"ev-{i}", [x for j, x in zip(range(2000, 3000), rows(range(2000, 3000))) if j % 2 == i])
    r.kill()
    for i in range(2):
        redis.xadd(f"ev-{i}", [x for j, x in zip(range(3000, 3500), rows(range(3000, 3500))) if j % 2 == i])
    r.start()
    r.wait_count("events", 3500)
    time.sleep(1.0)
    assert r.query("SELECT COUNT(*), COUNT(DISTINCT studentID), SUM(studentID) FROM events") == [
        [3500, 3500, sum(range(3500))]
    ]
    assert dict(r.query("SELECT subject, COUNT(*) FROM events GROUP BY subject")) == {"k0": 1750, "k1": 1750}
