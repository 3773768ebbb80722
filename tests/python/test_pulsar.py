"""The Pulsar plugin end to end against pulsar-lite (a broker speaking Pulsar's binary
protocol; its PyPI wheel carries the binary, `$RIFFLE_PULSAR_LITE`), through the riffle
binary and pinotdb, with messages produced by Pulsar's own Python client (batching on, so
entries hold several messages).

- The seed's transcript walkthrough: the 12 rows on a Pulsar topic, the table added with
  `riffle AddTable` from the example config with Pinot's Pulsar keys.
- A crash: the server killed with SIGKILL while batches arrive, then restarted: every row
  exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pulsar
import pytest

from riffle_harness import (
    LoopbackServer,
    Riffle,
    add_events_table,
    event_rows,
    stream_configs,
    transcript_walkthrough,
)


class PulsarLite(LoopbackServer):
    def __init__(self, log_dir: Path):
        conf = log_dir / "pulsar-lite.toml"
        # Metrics off: otherwise it listens on 0.0.0.0:8080.
        conf.write_text(f'db_path = "{log_dir / "pulsar-data"}"\nlog_level = "warn"\n\n[metrics]\nenabled = false\n')
        super().__init__(
            "pulsar-lite", "RIFFLE_PULSAR_LITE", log_dir,
            lambda port: ["--config", str(conf), "--addr", f"127.0.0.1:{port}"],
        )
        self.url = f"pulsar://127.0.0.1:{self.port}"

    def produce(self, topic: str, values: list[bytes]) -> None:
        client = pulsar.Client(self.url)
        try:
            producer = client.create_producer(topic, batching_enabled=True, batching_max_messages=50)
            for v in values:
                producer.send_async(v, None)
            producer.flush()
            producer.close()
        finally:
            client.close()

    def stream_configs(self, topic: str, extra: dict | None = None) -> dict:
        return stream_configs(
            "pulsar",
            {
                "stream.pulsar.topic.name": topic,
                "stream.pulsar.bootstrap.servers": self.url,
                "stream.pulsar.consumer.factory.class.name": "org.apache.pinot.plugin.stream.pulsar.PulsarConsumerFactory",
            },
            extra,
        )


@pytest.fixture
def pulsar_lite(tmp_path: Path, request) -> Iterator[PulsarLite]:
    p = PulsarLite(tmp_path)
    request.node.riffle_logs = [p.log]
    try:
        yield p
    finally:
        p.kill()


def test_transcript_through_pulsar(pulsar_lite: PulsarLite, riffle_factory, tmp_path: Path):
    # A line written later arrives at once.
    transcript_walkthrough(
        riffle_factory,
        tmp_path,
        pulsar_lite.stream_configs("transcript-topic"),
        lambda m: pulsar_lite.produce("transcript-topic", m),
    )


def rows(ids: range) -> list[bytes]:
    return event_rows(ids, lambda _: "s")


def test_a_crash_while_batches_arrive_keeps_every_row_once(pulsar_lite: PulsarLite, riffle_factory):
    r: Riffle = riffle_factory()
    r.start()
    add_events_table(r, pulsar_lite.stream_configs("events", {"realtime.segment.flush.threshold.rows": "170"}))
    pulsar_lite.produce("events", rows(range(0, 1000)))
    r.wait_count("events", 1000)
    pulsar_lite.produce("events", rows(range(1000, 2000)))
    r.kill()
    pulsar_lite.produce("events", rows(range(2000, 2500)))
    r.start()
    r.wait_count("events", 2500)
    time.sleep(1.0)
    assert r.query("SELECT COUNT(*), COUNT(DISTINCT studentID), SUM(studentID) FROM events") == [
        [2500, 2500, sum(range(2500))]
    ]
    names = r.get_json("/segments/events")[0]["REALTIME"]
    metas = [r.get_json(f"/segments/events/{n}/metadata") for n in names]
    done = sorted((m for m in metas if m["status"] == "DONE"), key=lambda m: m["sequenceNumber"])
    assert len(done) >= 10, done
    # Committed segments chain: each starts where the previous ended.
    for a, b in zip(done, done[1:]):
        assert a["endOffset"] == b["startOffset"], (a, b)
    # Segments of 170 rows over batches of up to 50 messages: some start inside a batch
    # (offsets are <ledger>:<entry>:<index in batch>), so batches were split across segments.
    assert any(not m["startOffset"].endswith(":000000") for m in done), [m["startOffset"] for m in done]
