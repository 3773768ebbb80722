"""The stream-level (high-level) consumer as a table mode, on Kafka (a Tansu broker):
`stream.kafka.consumer.type: highlevel` makes the table a member of a consumer group, whose
checkpoint (the vector of partition offsets) is recorded only when a segment commits, in the
same catalog transaction.

The kill test of the partition-level mode, with a group rebalance: a second member joins the
group and takes partitions away from Riffle while rows arrive, Riffle is killed with
SIGKILL, the other member leaves, and Riffle restarts from its last committed checkpoint:
every row exactly once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer

from riffle_harness import Riffle, Tansu, add_events_table, event_rows, wait_until

TOPIC = "hlc-events"
GROUP = "riffle-hlc-test"
PARTITIONS = 4


def produce(tansu: Tansu, ids: range) -> None:
    p = Producer({"bootstrap.servers": tansu.bootstrap})
    for i, row in zip(ids, event_rows(ids, lambda i: f"p{i % PARTITIONS}")):
        p.produce(TOPIC, row, partition=i % PARTITIONS)
    assert p.flush(30) == 0


def totals(r: Riffle) -> list:
    return r.query("SELECT COUNT(*), COUNT(DISTINCT studentID), SUM(studentID) FROM events")[0]


def test_stream_level_table_survives_a_rebalance_and_a_crash(tansu: Tansu, riffle_factory, tmp_path: Path):
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", str(PARTITIONS), TOPIC)
    produce(tansu, range(0, 2000))

    r: Riffle = riffle_factory()
    r.start()
    add_events_table(
        r,
        {
            "streamType": "kafka",
            "stream.kafka.consumer.type": "highlevel",
            "stream.kafka.topic.name": TOPIC,
            "stream.kafka.hlc.bootstrap.server": tansu.bootstrap,
            "stream.kafka.hlc.group.id": GROUP,
            "stream.kafka.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
            "stream.kafka.consumer.factory.class.name": "org.apache.pinot.plugin.stream.kafka20.KafkaConsumerFactory",
            "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "500",
            "realtime.segment.flush.threshold.rows": "700",
        },
    )
    r.wait_count("events", 2000)
    assert totals(r) == [2000, 2000, sum(range(2000))]

    # One stream-level partition, its offset the checkpoint vector of the topic's partitions.
    names = r.get_json("/segments/events")[0]["REALTIME"]
    metas = [r.get_json(f"/segments/events/{n}/metadata") for n in names]
    assert {m["partitionId"] for m in metas} == {0}, metas
    done = [m for m in metas if m["status"] == "DONE"]
    assert done, metas
    assert set(json.loads(done[0]["endOffset"])) == {"0", "1", "2", "3"}, done[0]

    # A second member joins the group: a rebalance gives it some of the partitions.
    other = Consumer({"bootstrap.servers": tansu.bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                      "auto.offset.reset": "latest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    other.subscribe([TOPIC])
    taken: list = []

    def joined():
        other.poll(0.2)
        taken[:] = other.assignment()
        return len(taken)

    wait_until("the second member to get partitions", joined, lambda n: 0 < n < PARTITIONS, timeout=60)
    produce(tansu, range(2000, 4000))
    # Riffle reads only its share meanwhile.
    held = {t.partition for t in taken}
    share = 2000 + sum(1 for i in range(2000, 4000) if i % PARTITIONS not in held)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        other.poll(0.2)
        if r.count("events") >= share:
            break
    for _ in range(10):
        other.poll(0.2)
    assert r.count("events") == share, (r.count("events"), share, held)

    # A crash while the group is split; then the other member leaves.
    r.kill()
    other.close()
    produce(tansu, range(4000, 5000))
    r.start()
    r.wait_count("events", 5000, timeout=120)
    time.sleep(2.0)
    assert totals(r) == [5000, 5000, sum(range(5000))]
    counts = dict(r.query("SELECT subject, COUNT(*) FROM events GROUP BY subject"))
    assert counts == {f"p{p}": 1250 for p in range(PARTITIONS)}, counts
