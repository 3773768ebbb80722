"""Riffle's decoders on data written by real producers, through a real Kafka-protocol broker.

The seed's transcript rows (`examples/transcript/`) go to a Tansu topic written by
Confluent's own serializers (`confluent-kafka`: Avro through a schema registry), by
fastavro (plain Avro, the schema in the table config) and as CSV lines; each table must hold
exactly those rows. The schema registry is the small one of `schema_registry.py` (none can
be installed here); what is on the wire is what Confluent's client writes, framing included.
"""

from __future__ import annotations

import io
import json
import time

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from riffle_harness import TRANSCRIPT_SCHEMA, Riffle, Tansu, transcript_lines, wait_until
from schema_registry import SchemaRegistry

AVRO_SCHEMA = {
    "type": "record",
    "name": "Transcript",
    "namespace": "riffle.example",
    "fields": [
        {"name": "studentID", "type": "int"},
        {"name": "firstName", "type": "string"},
        {"name": "lastName", "type": "string"},
        {"name": "gender", "type": {"type": "enum", "name": "Gender", "symbols": ["Female", "Male"]}},
        {"name": "subject", "type": "string"},
        {"name": "score", "type": "float"},
        {"name": "timestampInEpoch", "type": "long"},
    ],
}
# The next version: a field added (a reader of either version keeps working).
AVRO_SCHEMA_V2 = {
    **AVRO_SCHEMA,
    "fields": AVRO_SCHEMA["fields"] + [{"name": "room", "type": ["null", "string"], "default": None}],
}
DECODER_PREFIX = "org.apache.pinot.plugin.inputformat"


def rows() -> list[dict]:
    return [json.loads(l) for l in transcript_lines()]


def produce(tansu: Tansu, topic: str, values: list[bytes]) -> None:
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", "1", topic)
    p = Producer({"bootstrap.servers": tansu.bootstrap, "linger.ms": 5})
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0, "messages left unsent"


def add_table(r: Riffle, tansu: Tansu, topic: str, decoder: str, props: dict, dead_letters: bool = False) -> None:
    schema = json.loads(TRANSCRIPT_SCHEMA.read_text())
    schema["schemaName"] = topic
    status, body = r.post("/schemas", schema)
    assert status == 200, body
    stream = {
        "streamType": "kafka",
        "stream.kafka.topic.name": topic,
        "stream.kafka.broker.list": tansu.bootstrap,
        "stream.kafka.decoder.class.name": decoder,
        "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
    }
    for k, v in props.items():
        stream[f"stream.kafka.decoder.prop.{k}"] = v
    if dead_letters:
        stream["riffle.deadLetter.enabled"] = "true"
    config = {
        "tableName": topic,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "timestampInEpoch", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {"streamConfigs": stream},
        "metadata": {},
    }
    status, body = r.post("/tables", config)
    assert status == 200, body


def table_rows(r: Riffle, table: str) -> list[tuple]:
    got = r.query(
        f"SELECT studentID, firstName, lastName, gender, subject, score, timestampInEpoch FROM {table} LIMIT 1000"
    )
    return sorted((a, b, c, d, e, round(f, 4), g) for a, b, c, d, e, f, g in got)


def expected_rows() -> list[tuple]:
    return sorted(
        (x["studentID"], x["firstName"], x["lastName"], x["gender"], x["subject"], round(x["score"], 4), x["timestampInEpoch"])
        for x in rows()
    )


def consumer_counters(r: Riffle, table: str) -> dict:
    info = r.get_json(f"/tables/{table}/consumingSegmentsInfo")
    consumers = [c for segs in info["_segmentToConsumingInfoMap"].values() for c in segs]
    return {
        "errors": sum(c["riffleDecodeErrors"] for c in consumers),
        "last_error": [c.get("riffleLastError") for c in consumers],
    }


def confluent_values(registry: SchemaRegistry, topic: str, schema: dict, records: list[dict], auth: str) -> list[bytes]:
    conf = {"url": registry.url}
    if auth:
        conf["basic.auth.user.info"] = auth
    client = SchemaRegistryClient(conf)
    ser = AvroSerializer(client, json.dumps(schema))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [ser(rec, ctx) for rec in records]


def test_confluent_avro_through_a_schema_registry(tansu: Tansu, riffle_factory):
    registry = SchemaRegistry(users={"riffle": "s3cret"})
    topic = "transcript_avro_confluent"
    records = rows()
    # Two schema versions on one topic, and one message that is not Avro at all.
    values = confluent_values(registry, topic, AVRO_SCHEMA, records[:6], "riffle:s3cret")
    values += confluent_values(registry, topic, AVRO_SCHEMA_V2, [{**x, "room": "B12"} for x in records[6:]], "riffle:s3cret")
    assert values[0][0] == 0 and values[6][0] == 0 and values[0][1:5] != values[6][1:5]
    values.insert(3, b'{"not":"avro"}')
    produce(tansu, topic, values)

    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.avro.confluent.KafkaConfluentSchemaRegistryAvroMessageDecoder",
        {"schema.registry.rest.url": registry.url, "basic.auth.user.info": "riffle:s3cret"},
        dead_letters=True,
    )
    r.wait_count(topic, len(records))
    assert table_rows(r, topic) == expected_rows()
    c = consumer_counters(r, topic)
    assert c["errors"] == 1, c
    assert any("offset 3" in (e or "") and "Confluent" in (e or "") for e in c["last_error"]), c
    # The malformed message is in the dead-letter table with its offset and its bytes.
    [[partition, offset, value, error]] = r.query(
        f"SELECT streamPartition, streamOffset, messageValue, errorMessage FROM {topic}_deadLetter"
    )
    assert (partition, offset) == (0, "3")
    assert bytes.fromhex(value) == b'{"not":"avro"}'
    assert "Confluent" in error
    # Riffle asked the registry for exactly the two schemas, with the credentials.
    assert sorted(q for q in registry.requests if q.startswith("GET /schemas/ids/")) == [
        "GET /schemas/ids/1",
        "GET /schemas/ids/2",
    ]


def test_wrong_registry_credentials_are_an_outage_not_data_loss(tansu: Tansu, riffle_factory):
    registry = SchemaRegistry(users={"riffle": "s3cret"})
    topic = "transcript_avro_auth"
    produce(tansu, topic, confluent_values(registry, topic, AVRO_SCHEMA, rows(), "riffle:s3cret"))
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.avro.confluent.KafkaConfluentSchemaRegistryAvroMessageDecoder",
        {"schema.registry.rest.url": registry.url, "basic.auth.user.info": "riffle:wrong"},
    )
    wait_until(
        "the registry's 401 reported as the partition's error",
        lambda: consumer_counters(r, topic)["last_error"],
        lambda errs: any("401" in (e or "") for e in errs),
        timeout=30,
    )
    assert r.count(topic) == 0
    assert consumer_counters(r, topic)["errors"] == 0


def test_a_registry_down_for_10_seconds_loses_nothing(tansu: Tansu, riffle_factory):
    registry = SchemaRegistry()
    topic = "transcript_avro_outage"
    records = rows()
    produce(tansu, topic, confluent_values(registry, topic, AVRO_SCHEMA, records, ""))
    registry.stop()
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.avro.confluent.KafkaConfluentSchemaRegistryAvroMessageDecoder",
        {"schema.registry.rest.url": registry.url},
    )
    time.sleep(10)
    assert r.count(topic) == 0
    c = consumer_counters(r, topic)
    assert c["errors"] == 0, c
    assert any("schema registry" in (e or "") for e in c["last_error"]), c
    registry.start()
    r.wait_count(topic, len(records))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 0
    time.sleep(1)
    assert r.count(topic) == len(records)


def test_plain_avro_with_the_schema_in_the_config(tansu: Tansu, riffle_factory):
    topic = "transcript_avro_plain"
    parsed = fastavro.parse_schema(AVRO_SCHEMA)
    values = []
    for rec in rows():
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, rec)
        values.append(buf.getvalue())
    produce(tansu, topic, values)
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.avro.SimpleAvroMessageDecoder",
        {"schema": json.dumps(AVRO_SCHEMA)},
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 0


def test_csv(tansu: Tansu, riffle_factory):
    topic = "transcript_csv"
    order = ["studentID", "firstName", "lastName", "gender", "subject", "score", "timestampInEpoch"]
    values = ["|".join(str(rec[k]) for k in order).encode() for rec in rows()]
    produce(tansu, topic, values)
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.csv.CSVMessageDecoder",
        {"header": "|".join(order), "delimiter": "|"},
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 0
