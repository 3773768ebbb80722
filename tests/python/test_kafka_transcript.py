"""The seed's transcript example through Kafka, queried through pinotdb.

A Tansu broker (Kafka-compatible, installed by `scripts/tansu.sh`; `$RIFFLE_TANSU` points
at the binary) on a free loopback port; the topic `transcript-topic` gets the 12 rows of
`examples/transcript/transcript.jsonl` through Tansu's own producer (`tansu cat produce`,
so no Python Kafka client is needed); the table is added with `riffle AddTable` from
`examples/transcript/transcript_realtime_table_config.json` changed only in
`stream.kafka.broker.list`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from riffle_harness import (
    TRANSCRIPT_DIR,
    TRANSCRIPT_SCHEMA,
    TRANSCRIPT_TOPIC,
    Riffle,
    Tansu,
    add_table_with_admin,
    check_transcript_averages,
    transcript_lines,
)

TRANSCRIPT_REALTIME_TABLE = TRANSCRIPT_DIR / "transcript_realtime_table_config.json"


def test_transcript_through_kafka(tansu: Tansu, riffle_factory, tmp_path: Path):
    lines = transcript_lines()
    assert len(lines) == 12

    # The topic, and the rows as record values: `tansu cat produce` reads one JSON object
    # per line and sends its "value" member (re-encoded as JSON) as the record's value.
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", "1", TRANSCRIPT_TOPIC)
    produced = "".join(json.dumps({"value": json.loads(l)}) + "\n" for l in lines)
    tansu.run("cat", "produce", "--broker", tansu.url, "--partition", "0", TRANSCRIPT_TOPIC, stdin=produced)

    # The seed's realtime table config, only the broker list changed.
    table = json.loads(TRANSCRIPT_REALTIME_TABLE.read_text(encoding="utf-8"))
    stream = table["tableIndexConfig"]["streamConfigs"]
    assert stream["stream.kafka.topic.name"] == TRANSCRIPT_TOPIC
    stream["stream.kafka.broker.list"] = tansu.bootstrap
    table_file = tmp_path / "transcript_realtime_table_config.json"
    table_file.write_text(json.dumps(table, indent=2), encoding="utf-8")

    r: Riffle = riffle_factory()
    r.start()
    add_table_with_admin(r, TRANSCRIPT_SCHEMA, table_file)

    r.wait_count("transcript", 12)
    assert r.query("SELECT COUNT(*) FROM transcript") == [[12]]

    check_transcript_averages(r, lines)

    # Nothing more arrives: each record was read once.
    time.sleep(1.0)
    assert r.count("transcript") == 12
    assert r.query("SELECT studentID, subject FROM transcript WHERE lastName = 'Young'") == [[212, "History"]]
