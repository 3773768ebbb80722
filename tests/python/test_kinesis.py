"""The Kinesis plugin end to end against kinesis-mock, through the riffle binary and pinotdb.

kinesis-mock binds every address, so these tests are marked `netns`: `scripts/test.sh` runs
them in a pytest of their own under `unshare -n` (loopback up), where riffle and the mock
share a private loopback; the ordinary run deselects them (pytest.ini).

- The seed's transcript walkthrough: the 12 rows written to a Kinesis stream, the table
  added with `riffle AddTable` from the example config with Pinot's Kinesis keys.
- Resharding with a crash: a shard split and the two children merged while rows arrive,
  the server killed with SIGKILL in between; every row exactly once, counted per shard of
  the lineage, and each closed shard ended with `endOfPartitionGroup`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from kinesis_mock import KinesisMock
from riffle_harness import (
    Riffle,
    add_events_table,
    event_rows,
    transcript_walkthrough,
    wait_until,
)

pytestmark = pytest.mark.netns


@pytest.fixture
def kinesis(tmp_path: Path, request) -> Iterator[KinesisMock]:
    m = KinesisMock(tmp_path)
    request.node.riffle_logs = [m.log]
    try:
        yield m
    finally:
        m.kill()


def test_transcript_through_kinesis(kinesis: KinesisMock, riffle_factory, tmp_path: Path):
    kinesis.create_stream("transcript-topic", 1)
    # A line written later arrives within a few polls (5 GetRecords calls a second by default).
    r = transcript_walkthrough(
        riffle_factory,
        tmp_path,
        kinesis.stream_configs("transcript-topic"),
        lambda m: kinesis.put("transcript-topic", 0, m),
    )
    info = r.get_json("/tables/transcript/consumingSegmentsInfo")
    segs = info["_segmentToConsumingInfoMap"]
    assert len(segs) == 1, info
    [(seg, [state])] = segs.items()
    assert state["consumerState"] == "CONSUMING", state
    assert state["partitionOffsetInfo"]["currentOffsetsMap"]["0"].endswith("+"), state


def rows(shard: int, ids: range) -> list[bytes]:
    return event_rows(ids, lambda _: f"shard{shard}")


def per_shard(r: Riffle) -> dict[str, int]:
    return {s: int(n) for s, n in r.query("SELECT subject, COUNT(*) FROM events GROUP BY subject")}


def test_reshard_with_a_crash_keeps_every_row_once(kinesis: KinesisMock, riffle_factory, tmp_path: Path):
    kinesis.create_stream("events", 1)
    r: Riffle = riffle_factory()
    r.start()
    add_events_table(r, kinesis.stream_configs("events", {"realtime.segment.flush.threshold.rows": "150"}))

    kinesis.put("events", 0, rows(0, range(0, 400)))
    r.wait_count("events", 400)
    kinesis.split("events", 0)
    kinesis.put("events", 1, rows(1, range(400, 700)))
    kinesis.put("events", 2, rows(2, range(700, 1100)))
    # A crash while the children are being read.
    wait_until("children being read", lambda: r.count("events"), lambda n: n > 400)
    r.kill()
    kinesis.put("events", 1, rows(1, range(1100, 1200)))
    r.start()
    kinesis.merge("events", 1, 2)
    kinesis.put("events", 3, rows(3, range(1200, 1500)))
    r.wait_count("events", 1500)
    time.sleep(1.0)
    assert r.query("SELECT COUNT(*), COUNT(DISTINCT studentID) FROM events") == [[1500, 1500]]
    assert per_shard(r) == {"shard0": 400, "shard1": 400, "shard2": 400, "shard3": 300}

    names = r.get_json("/segments/events")[0]["REALTIME"]
    metas = [r.get_json(f"/segments/events/{n}/metadata") for n in names]
    for p in (0, 1, 2):
        last = max((m for m in metas if m["partitionId"] == p), key=lambda m: m["sequenceNumber"])
        assert last["status"] == "DONE" and last["stopReason"] == "endOfPartitionGroup", last
    consuming = [m["partitionId"] for m in metas if m["status"] == "IN_PROGRESS"]
    assert consuming == [3], consuming
