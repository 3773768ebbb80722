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
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from riffle_harness import TLS_DIR, TRANSCRIPT_SCHEMA, Riffle, Tansu, transcript_lines, wait_until
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
    if registry.tls:
        conf["ssl.ca.location"] = str(TLS_DIR / "ca.pem")
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


JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Transcript",
    "type": "object",
    "properties": {
        "studentID": {"type": "integer"},
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "gender": {"type": "string"},
        "subject": {"type": "string"},
        "score": {"type": "number"},
        "timestampInEpoch": {"type": "integer"},
    },
}


def test_confluent_json_through_a_schema_registry(tansu: Tansu, riffle_factory):
    registry = SchemaRegistry()
    topic = "transcript_json_confluent"
    client = SchemaRegistryClient({"url": registry.url})
    ser = JSONSerializer(json.dumps(JSON_SCHEMA), client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    values = [ser(rec, ctx) for rec in rows()]
    assert values[0][0] == 0 and values[0][5:6] == b"{"
    produce(tansu, topic, values)
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.json.confluent.KafkaConfluentSchemaRegistryJsonMessageDecoder",
        {"schema.registry.rest.url": registry.url},
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 0


def transcript_proto(with_import: bool = False):
    """The transcript as a protobuf message class and its file descriptors (imports first).

    With `with_import`, the `Gender` enum lives in a second file that the first imports and
    the file declares another message before `Transcript` (Confluent's message index 1).
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = []
    fdp = descriptor_pb2.FileDescriptorProto(name="transcript.proto", package="riffle.example", syntax="proto3")
    if with_import:
        common = descriptor_pb2.FileDescriptorProto(name="riffle/common.proto", package="riffle.example", syntax="proto3")
        files.append(common)
        fdp.dependency.append(common.name)
        fdp.message_type.add(name="Envelope").field.add(
            name="note", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
        )
        enum_home = common
    else:
        enum_home = fdp
    gender = enum_home.enum_type.add(name="Gender")
    gender.value.add(name="Unknown", number=0)
    gender.value.add(name="Female", number=1)
    gender.value.add(name="Male", number=2)
    m = fdp.message_type.add(name="Transcript")
    F = descriptor_pb2.FieldDescriptorProto
    for number, (name, kind) in enumerate(
        [
            ("studentID", F.TYPE_INT32),
            ("firstName", F.TYPE_STRING),
            ("lastName", F.TYPE_STRING),
            ("gender", F.TYPE_ENUM),
            ("subject", F.TYPE_STRING),
            ("score", F.TYPE_FLOAT),
            ("timestampInEpoch", F.TYPE_INT64),
        ],
        start=1,
    ):
        f = m.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if kind == F.TYPE_ENUM:
            f.type_name = ".riffle.example.Gender"
    # A field the table does not have, repeated and packed: skipped.
    m.field.add(name="marks", number=20, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    files.append(fdp)
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("riffle.example.Transcript"))
    return cls, files


def test_protobuf_with_a_descriptor_file(tansu: Tansu, riffle_factory):
    from google.protobuf import descriptor_pb2

    cls, files = transcript_proto()
    values = [cls(**rec, marks=[1, 2, 3]).SerializeToString() for rec in rows()]
    topic = "transcript_protobuf"
    produce(tansu, topic, values + [b"\xff\xff"])
    r: Riffle = riffle_factory()
    r.start()
    desc = r.data_dir / "transcript.desc"
    desc.write_bytes(descriptor_pb2.FileDescriptorSet(file=files).SerializeToString())
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.protobuf.ProtoBufMessageDecoder",
        {"descriptorFile": str(desc), "protoClassName": "riffle.example.Transcript"},
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 1
    # A descriptor outside the data directory is refused: nothing else is read.
    status, body = r.post("/schemas", {**json.loads(TRANSCRIPT_SCHEMA.read_text()), "schemaName": "elsewhere"})
    assert status == 200, body
    status, body = r.post(
        "/tables",
        {
            "tableName": "elsewhere",
            "tableType": "REALTIME",
            "segmentsConfig": {"timeColumnName": "timestampInEpoch", "replication": "1"},
            "tenants": {},
            "tableIndexConfig": {
                "streamConfigs": {
                    "streamType": "kafka",
                    "stream.kafka.topic.name": topic,
                    "stream.kafka.broker.list": tansu.bootstrap,
                    "stream.kafka.decoder.class.name": f"{DECODER_PREFIX}.protobuf.ProtoBufMessageDecoder",
                    "stream.kafka.decoder.prop.descriptorFile": "/etc/passwd",
                    "stream.kafka.decoder.prop.protoClassName": "x",
                }
            },
            "metadata": {},
        },
    )
    assert status == 400 and "descriptorFile" in json.dumps(body), body


def test_confluent_protobuf_through_a_schema_registry(tansu: Tansu, riffle_factory):
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    # The message is the file's second (index path [1]) and its enum comes from an imported
    # file, registered as a reference: both must be followed.
    cls, _ = transcript_proto(with_import=True)
    registry = SchemaRegistry(users={"riffle": "s3cret"})
    topic = "transcript_protobuf_confluent"
    client = SchemaRegistryClient({"url": registry.url, "basic.auth.user.info": "riffle:s3cret"})
    ser = ProtobufSerializer(cls, client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    values = [ser(cls(**rec), ctx) for rec in rows()]
    # Confluent's framing: magic 0, the schema id, then the index path [1] (count 1, index 1,
    # zig-zag encoded).
    assert values[0][0] == 0 and values[0][5:7] == b"\x02\x02", values[0][:8]
    assert "riffle/common.proto" in " ".join(registry.subjects), registry.subjects
    produce(tansu, topic, values + [values[0][:5] + b"\x7f"])
    r: Riffle = riffle_factory()
    r.start()
    add_table(
        r,
        tansu,
        topic,
        f"{DECODER_PREFIX}.protobuf.KafkaConfluentSchemaRegistryProtoBufMessageDecoder",
        {"schema.registry.rest.url": registry.url, "basic.auth.user.info": "riffle:s3cret"},
        dead_letters=True,
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    dead = wait_until(
        "the malformed message in the dead-letter table",
        lambda: r.query(f"SELECT streamOffset, errorMessage FROM {topic}_deadLetter"),
        lambda got: len(got) == 1,
    )
    [[offset, error]] = dead
    assert offset == str(len(values)) and "index" in error, (offset, error)
    # The schema and its reference were read in their serialized form.
    assert "GET /subjects/riffle%2Fcommon.proto/versions/1" in registry.requests, registry.requests


def test_a_registry_over_tls_with_a_pem_truststore(tansu: Tansu, riffle_factory):
    registry = SchemaRegistry(tls=(str(TLS_DIR / "server.pem"), str(TLS_DIR / "server.key")))
    assert registry.url.startswith("https://")
    topic = "transcript_avro_tls"
    values = confluent_values(registry, topic, AVRO_SCHEMA, rows(), "")
    produce(tansu, topic, values)
    r: Riffle = riffle_factory()
    r.start()
    decoder = f"{DECODER_PREFIX}.avro.confluent.KafkaConfluentSchemaRegistryAvroMessageDecoder"
    # The registry's certificate is signed by the test CA, given as a PEM truststore.
    add_table(
        r,
        tansu,
        topic,
        decoder,
        {
            "schema.registry.rest.url": registry.url,
            "schema.registry.ssl.truststore.location": str(TLS_DIR / "ca.pem"),
            "schema.registry.ssl.truststore.type": "PEM",
        },
    )
    r.wait_count(topic, len(values))
    assert table_rows(r, topic) == expected_rows()
    assert consumer_counters(r, topic)["errors"] == 0
    # A Java key store is refused by name when the table is created.
    schema = json.loads(TRANSCRIPT_SCHEMA.read_text())
    schema["schemaName"] = "jks"
    assert r.post("/schemas", schema)[0] == 200
    status, body = r.post(
        "/tables",
        {
            "tableName": "jks",
            "tableType": "REALTIME",
            "segmentsConfig": {"timeColumnName": "timestampInEpoch", "replication": "1"},
            "tenants": {},
            "tableIndexConfig": {
                "streamConfigs": {
                    "streamType": "kafka",
                    "stream.kafka.topic.name": topic,
                    "stream.kafka.broker.list": tansu.bootstrap,
                    "stream.kafka.decoder.class.name": decoder,
                    "stream.kafka.decoder.prop.schema.registry.rest.url": registry.url,
                    "stream.kafka.decoder.prop.schema.registry.ssl.truststore.location": str(TLS_DIR / "ca.pem"),
                    "stream.kafka.decoder.prop.schema.registry.ssl.truststore.type": "JKS",
                }
            },
            "metadata": {},
        },
    )
    assert status == 400 and "truststore.type" in json.dumps(body), body
