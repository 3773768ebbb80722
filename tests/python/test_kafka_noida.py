"""The Kafka plugin end to end on a second, fuller Kafka-protocol broker: noida-db (a Rust
binary from PyPI, pinned in requirements.txt; its Kafka service only, on a free loopback
port). It serves what Tansu does not: CreatePartitions, ListOffsets by timestamp,
transactions with `read_committed` and DeleteRecords.

Records are written with confluent-kafka (librdkafka); tables name Pinot's kafka40
consumer factory. Known faults of the broker the tests stay clear of: a Fetch ignores byte
limits (every topic here stays far below 100 MB), the consumer-group path can answer
EARLIEST with the end offset (Riffle assigns partitions and seeks, no group), and a Fetch
lists every aborted transaction of a producer, also those that ended before the fetched
offset, so a `read_committed` reader that waits at the end of the log (librdkafka's own
consumer as much as Riffle) drops the next committed transaction of a producer that
aborted one before; transactions written after a reader caught up therefore come from a
new transactional id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from riffle_harness import Riffle, free_ports, wait_listening, wait_until

DAY_MS = 86_400_000
FACTORY = "org.apache.pinot.plugin.stream.kafka40.KafkaConsumerFactory"


def noida_bin() -> Path:
    """`$RIFFLE_NOIDA`, else the `noida-db` launcher pip put beside this interpreter
    (requirements.txt)."""
    p = Path(os.environ.get("RIFFLE_NOIDA") or Path(sys.executable).parent / "noida-db")
    if not p.is_file():
        pytest.fail(f"noida-db is not installed at {p}: scripts/test.sh installs tests/python/requirements.txt")
    return p


class Noida:
    """One noida-db server with only its Kafka service, on a free loopback port; its data
    directory survives a restart."""

    def __init__(self, tmp: Path):
        self.port = free_ports(1)[0]
        self.data = tmp / f"noida-{self.port}"
        self.log = tmp / f"noida-{self.port}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(noida_bin()), "start", "--host", "127.0.0.1", "--only", "kafka",
                 "--kafka-port", str(self.port), "--data-dir", str(self.data)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        wait_listening("noida-db", self.proc, self.port, self.log)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topic(self, name: str, partitions: int = 1) -> None:
        a = self.admin()  # kept alive until the futures resolve
        for _, f in a.create_topics([NewTopic(name, partitions, 1)]).items():
            f.result(timeout=20)

    def add_partitions(self, topic: str, total: int) -> None:
        a = self.admin()
        for _, f in a.create_partitions([NewPartitions(topic, total)]).items():
            f.result(timeout=20)

    def producer(self, **extra) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0, **extra})


@pytest.fixture
def noida(tmp_path: Path, request) -> Iterator[Noida]:
    n = Noida(tmp_path)
    request.node.riffle_logs = [n.log]
    try:
        yield n
    finally:
        n.kill()


def event(i: int, ts: Optional[int] = None) -> bytes:
    return json.dumps({"id": i, "ts": ts if ts is not None else int(time.time() * 1000)}).encode()


def produce(p: Producer, topic: str, ids, partition: int = 0, ts: Optional[int] = None) -> None:
    # The producer learns of a new topic or partition from metadata: ask until it knows.
    wait_until(
        f"{topic}[{partition}] in the producer's metadata",
        lambda: len(p.list_topics(topic, timeout=5).topics[topic].partitions),
        lambda n: n > partition,
        20,
    )
    for i in ids:
        if ts is None:
            p.produce(topic, event(i), partition=partition)
        else:
            p.produce(topic, event(i, ts), partition=partition, timestamp=ts)
    assert p.flush(20) == 0


def create_table(r: Riffle, name: str, topic: str, bootstrap: str, **stream) -> None:
    schema = {
        "schemaName": name,
        "dimensionFieldSpecs": [{"name": "id", "dataType": "LONG"}],
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "TIMESTAMP",
                                "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}],
    }
    configs = {
        "streamType": "kafka",
        "stream.kafka.topic.name": topic,
        "stream.kafka.broker.list": bootstrap,
        "stream.kafka.consumer.type": "lowlevel",
        "stream.kafka.consumer.factory.class.name": FACTORY,
        "stream.kafka.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
        "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
        **stream,
    }
    table = {
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {"streamConfigs": configs},
    }
    status, body = r.post("/tableConfigs", {"tableName": name, "schema": schema, "realtime": table})
    assert status == 200, body


def ids(r: Riffle, table: str) -> list[int]:
    return sorted(int(row[0]) for row in r.query(f"SELECT id FROM {table} LIMIT 100000"))


def wait_ids(r: Riffle, table: str, want: list[int], timeout: float = 60.0) -> None:
    wait_until(f"ids of {table}", lambda: ids(r, table), lambda got: got == sorted(want), timeout)
    time.sleep(0.5)  # nothing more may arrive
    assert ids(r, table) == sorted(want)


def partitions(r: Riffle, table: str) -> dict[str, dict]:
    """Per partition: current offset, latest upstream offset, lag, state, error, lost."""
    info = r.get_json(f"/tables/{table}/consumingSegmentsInfo")["_segmentToConsumingInfoMap"]
    out = {}
    for _, servers in info.items():
        for s in servers:
            o = s["partitionOffsetInfo"]
            for p, cur in o["currentOffsetsMap"].items():
                out[p] = {
                    "current": int(cur),
                    "latest": int(o["latestUpstreamOffsetMap"].get(p, -1)),
                    "lag": int(o["recordsLagMap"].get(p, -1)),
                    "state": s["riffleState"],
                    "error": s["riffleLastError"],
                    "lost": s["riffleOffsetsLost"],
                }
    return out


def test_partitions_added_while_consuming_are_read_from_their_start(noida: Noida, riffle_factory):
    noida.create_topic("grow", 1)
    p = noida.producer()
    produce(p, "grow", range(0, 40))
    r: Riffle = riffle_factory().start()
    create_table(r, "grow", "grow", noida.bootstrap)
    wait_ids(r, "grow", list(range(40)))
    noida.add_partitions("grow", 3)
    produce(p, "grow", range(40, 70), partition=1)
    produce(p, "grow", range(70, 100), partition=2)
    produce(p, "grow", range(100, 110), partition=0)
    wait_ids(r, "grow", list(range(110)))
    assert sorted(partitions(r, "grow")) == ["0", "1", "2"]


def test_period_and_instant_criteria_start_at_record_timestamps(noida: Noida, riffle_factory):
    now = int(time.time() * 1000)
    noida.create_topic("old-new", 1)
    p = noida.producer()
    produce(p, "old-new", range(0, 30), ts=now - 3 * DAY_MS)
    produce(p, "old-new", range(30, 50), ts=now - DAY_MS)
    produce(p, "old-new", range(50, 60), ts=now)
    r: Riffle = riffle_factory().start()
    # A period: records of the last two days.
    create_table(r, "by_period", "old-new", noida.bootstrap,
                 **{"stream.kafka.consumer.prop.auto.offset.reset": "2d"})
    # An ISO-8601 instant: records from one hour before now on.
    instant = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - 3_600_000) / 1000))
    create_table(r, "by_instant", "old-new", noida.bootstrap,
                 **{"stream.kafka.consumer.prop.auto.offset.reset": instant})
    wait_ids(r, "by_period", list(range(30, 60)))
    wait_ids(r, "by_instant", list(range(50, 60)))
    # Later records arrive in both.
    produce(p, "old-new", range(60, 65), ts=now + 1000)
    wait_ids(r, "by_period", list(range(30, 65)))
    wait_ids(r, "by_instant", list(range(50, 65)))


class Tx:
    """A transactional producer."""

    def __init__(self, noida: Noida, tid: str):
        self.p = noida.producer(**{"transactional.id": tid})
        self.p.init_transactions(20)

    def run(self, topic: str, ids, commit: Optional[bool], partition: int = 0) -> None:
        """One transaction of `ids`: committed, aborted, or left open (`commit` None)."""
        self.p.begin_transaction()
        for i in ids:
            self.p.produce(topic, event(i), partition=partition)
        assert self.p.flush(20) == 0
        if commit is True:
            self.p.commit_transaction(20)
        elif commit is False:
            self.p.abort_transaction(20)


def log_end(noida: Noida, topic: str, partition: int = 0) -> int:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": noida.bootstrap, "group.id": "riffle-test-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def wait_caught_up(r: Riffle, table: str, end: int) -> dict:
    """Waits until partition 0 of `table` has read to `end` with no lag, and returns it."""
    return wait_until(
        f"{table} at offset {end} with no lag",
        lambda: partitions(r, table)["0"],
        lambda p: p["current"] == end and p["lag"] == 0,
        30,
    )


READ_COMMITTED = {"stream.kafka.isolation.level": "read_committed"}


def test_read_committed_skips_aborted_records_and_reaches_the_end(noida: Noida, riffle_factory):
    """Aborted transactions between committed ones and plain records, and a log whose last
    record is a commit marker: exact counts, the end reached, no lag, no loss alarm."""
    noida.create_topic("tx", 1)
    plain, tx = noida.producer(), Tx(noida, "riffle-tx")
    produce(plain, "tx", range(0, 5))
    tx.run("tx", range(100, 110), commit=True)
    tx.run("tx", range(200, 205), commit=False)
    produce(plain, "tx", range(5, 10))
    tx.run("tx", range(300, 303), commit=False)
    tx.run("tx", range(110, 120), commit=True)
    end = log_end(noida, "tx")
    r: Riffle = riffle_factory().start()
    create_table(r, "committed", "tx", noida.bootstrap, **READ_COMMITTED)
    create_table(r, "uncommitted", "tx", noida.bootstrap)
    committed = list(range(10)) + list(range(100, 120))
    wait_ids(r, "committed", committed)
    wait_ids(r, "uncommitted", committed + list(range(200, 205)) + list(range(300, 303)))
    for table in ["committed", "uncommitted"]:
        p = wait_caught_up(r, table, end)
        assert p["error"] is None and p["lost"] == 0, p
    # More after the marker: read once (a new producer, see the module documentation).
    Tx(noida, "riffle-tx-2").run("tx", range(120, 125), commit=True)
    wait_ids(r, "committed", committed + list(range(120, 125)))
    wait_caught_up(r, "committed", log_end(noida, "tx"))


def test_a_topic_of_aborted_records_and_markers_reads_nothing_without_stalling(noida: Noida, riffle_factory):
    noida.create_topic("aborted", 1)
    tx = Tx(noida, "riffle-aborted")
    tx.run("aborted", range(0, 5), commit=False)
    tx.run("aborted", range(5, 8), commit=False)
    end = log_end(noida, "aborted")
    assert end >= 10  # 8 records, 2 markers
    r: Riffle = riffle_factory().start()
    create_table(r, "none", "aborted", noida.bootstrap, **READ_COMMITTED)
    p = wait_caught_up(r, "none", end)
    assert p["error"] is None and p["lost"] == 0, p
    assert r.query("SELECT COUNT(*) FROM none") == [[0]]
    # The partition is not stuck: a committed record after them arrives.
    Tx(noida, "riffle-aborted-2").run("aborted", [42], commit=True)
    wait_ids(r, "none", [42])


def test_an_open_transaction_holds_back_what_follows_until_it_commits(noida: Noida, riffle_factory):
    noida.create_topic("open", 1)
    plain, tx = noida.producer(), Tx(noida, "riffle-open")
    produce(plain, "open", range(0, 5))
    tx.run("open", range(100, 105), commit=None)
    produce(plain, "open", range(5, 10))
    r: Riffle = riffle_factory().start()
    create_table(r, "held", "open", noida.bootstrap, **READ_COMMITTED)
    create_table(r, "seen", "open", noida.bootstrap)
    # read_uncommitted sees everything; read_committed stops before the open transaction.
    wait_ids(r, "seen", list(range(10)) + list(range(100, 105)))
    wait_ids(r, "held", list(range(5)))
    time.sleep(1.0)
    held = partitions(r, "held")["0"]
    assert held["error"] is None and held["lost"] == 0, held
    assert held["lag"] == held["latest"] - held["current"], held
    tx.p.commit_transaction(20)
    wait_ids(r, "held", list(range(10)) + list(range(100, 105)))
    wait_caught_up(r, "held", log_end(noida, "open"))


def test_deleted_unread_records_follow_the_data_loss_policy(noida: Noida, riffle_factory):
    """Records deleted (DeleteRecords) before Riffle read them: STOP (the default) stops the
    partition with an error that names the loss; RESUME_FROM_EARLIEST goes on from the
    earliest record left and counts what was lost. Committed rows stay either way."""
    noida.create_topic("gone", 1)
    p = noida.producer()
    produce(p, "gone", range(0, 50))
    r: Riffle = riffle_factory().start()
    seal = {"realtime.segment.flush.threshold.rows": "50"}
    create_table(r, "stop", "gone", noida.bootstrap, **seal)
    create_table(r, "resume", "gone", noida.bootstrap,
                 **seal, **{"realtime.segment.dataLossPolicy": "RESUME_FROM_EARLIEST"})
    for t in ["stop", "resume"]:
        wait_ids(r, t, list(range(50)))
        # The first segment sealed at 50 rows: the next one consumes from offset 50.
        wait_until(f"{t} committed to 50", lambda: partitions(r, t)["0"]["current"], lambda c: c == 50, 30)
    r.kill()
    produce(p, "gone", range(50, 100))
    a = noida.admin()
    for _, f in a.delete_records([TopicPartition("gone", 0, 80)]).items():
        f.result(timeout=20)
    r.start()
    wait_ids(r, "resume", list(range(50)) + list(range(80, 100)))
    resumed = wait_until("resume lost 30", lambda: partitions(r, "resume")["0"], lambda p: p["lost"] == 30, 30)
    assert resumed["error"] is None or "RESUME_FROM_EARLIEST" in resumed["error"], resumed
    stopped = wait_until("stop in error", lambda: partitions(r, "stop")["0"], lambda p: p["error"], 30)
    assert "RESUME_FROM_EARLIEST" in stopped["error"] and stopped["lost"] == 0, stopped
    assert ids(r, "stop") == list(range(50))
