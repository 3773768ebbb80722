"""kinesis-mock (npm `kinesis-local`, installed by `scripts/kinesis-mock.sh`;
`$RIFFLE_KINESIS_MOCK` points at its `main.js`) and a small client of the Kinesis JSON API.

kinesis-mock binds every address and cannot be told otherwise, so it is only started in a
private network namespace: `scripts/test.sh` runs the tests marked `netns` under
`unshare -n` with loopback up, and records the outer namespace in `$RIFFLE_OUTER_NETNS`;
`KinesisMock` refuses to start when this process is still in it.

The mock does not check signatures, only that the `Authorization` header has their parts,
so requests carry a well-formed header with a dummy signature.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from riffle_harness import free_ports, wait_until

REGION = "us-east-1"


def in_private_netns() -> bool:
    outer = os.environ.get("RIFFLE_OUTER_NETNS")
    return bool(outer) and os.readlink("/proc/self/ns/net") != outer


def mock_main() -> Path:
    p = os.environ.get("RIFFLE_KINESIS_MOCK")
    if p:
        return Path(p)
    return Path.home() / ".cache/riffle/tools/kinesis-local-0.6.2/node_modules/kinesis-local/main.js"


class KinesisMock:
    def __init__(self, log_dir: Path):
        assert in_private_netns(), (
            "kinesis-mock binds every address: run this test in a private network namespace "
            "(scripts/test.sh runs the tests marked netns under `unshare -n`)"
        )
        main = mock_main()
        assert main.is_file(), f"kinesis-mock is not installed at {main}: run scripts/kinesis-mock.sh"
        plain, tls = free_ports(2)
        self.endpoint = f"http://127.0.0.1:{plain}"
        self.log = log_dir / "kinesis-mock.log"
        env = dict(os.environ)
        env.update(
            KINESIS_MOCK_CERT_PATH=str(main.with_name("server.json")),
            KINESIS_MOCK_PLAIN_PORT=str(plain),
            KINESIS_MOCK_TLS_PORT=str(tls),
            LOG_LEVEL="WARN",
            CREATE_STREAM_DURATION="20ms",
            SPLIT_SHARD_DURATION="20ms",
            MERGE_SHARDS_DURATION="20ms",
        )
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [os.environ.get("RIFFLE_NODE", "node"), str(main)],
                cwd=log_dir, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

        def healthy() -> bool:
            assert self.proc.poll() is None, f"kinesis-mock exited: {self.log.read_text()}"
            with urllib.request.urlopen(f"{self.endpoint}/healthcheck", timeout=1) as r:
                return r.status == 200

        wait_until("kinesis-mock answers /healthcheck", healthy, bool, timeout=60)

    def call(self, op: str, body: dict) -> dict:
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        req = urllib.request.Request(
            self.endpoint + "/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Kinesis_20131202.{op}",
                "X-Amz-Date": date,
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential=AKIDRIFFLETEST/{date[:8]}/{REGION}/kinesis/aws4_request, "
                    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
                ),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"kinesis {op} failed: {e.code} {e.read()!r}") from None
        return json.loads(text) if text.strip() else {}

    def wait_active(self, stream: str) -> None:
        wait_until(
            f"stream {stream} active",
            lambda: self.call("DescribeStreamSummary", {"StreamName": stream})["StreamDescriptionSummary"]["StreamStatus"],
            lambda st: st == "ACTIVE",
            timeout=30,
        )

    def create_stream(self, stream: str, shards: int) -> None:
        self.call("CreateStream", {"StreamName": stream, "ShardCount": shards})
        self.wait_active(stream)

    def shards(self, stream: str) -> list[dict]:
        return self.call("ListShards", {"StreamName": stream})["Shards"]

    def put(self, stream: str, shard: int, values: list[bytes]) -> None:
        """Writes values to one shard (by its starting hash key), in order."""
        sid = f"shardId-{shard:012d}"
        key = next(s for s in self.shards(stream) if s["ShardId"] == sid)["HashKeyRange"]["StartingHashKey"]
        for i in range(0, len(values), 500):
            recs = [
                {"Data": base64.b64encode(v).decode(), "PartitionKey": "k", "ExplicitHashKey": key}
                for v in values[i : i + 500]
            ]
            out = self.call("PutRecords", {"StreamName": stream, "Records": recs})
            assert not out.get("FailedRecordCount"), out
            assert all(r["ShardId"] == sid for r in out["Records"]), out

    def split(self, stream: str, shard: int) -> None:
        """Splits a shard in the middle of its hash keys."""
        sid = f"shardId-{shard:012d}"
        r = next(s for s in self.shards(stream) if s["ShardId"] == sid)["HashKeyRange"]
        mid = (int(r["StartingHashKey"]) + int(r["EndingHashKey"])) // 2 + 1
        self.call("SplitShard", {"StreamName": stream, "ShardToSplit": sid, "NewStartingHashKey": str(mid)})
        self.wait_active(stream)

    def merge(self, stream: str, a: int, b: int) -> None:
        self.call(
            "MergeShards",
            {"StreamName": stream, "ShardToMerge": f"shardId-{a:012d}", "AdjacentShardToMerge": f"shardId-{b:012d}"},
        )
        self.wait_active(stream)

    def stream_configs(self, stream: str, extra: Optional[dict] = None) -> dict:
        """A table's streamConfigs for `stream`, as Pinot's Kinesis example writes them."""
        c = {
            "streamType": "kinesis",
            "stream.kinesis.topic.name": stream,
            "region": REGION,
            "shardIteratorType": "TRIM_HORIZON",
            "endpoint": self.endpoint,
            "accessKey": "AKIDRIFFLETEST",
            "secretKey": "riffle-test-secret",
            "stream.kinesis.consumer.type": "lowlevel",
            "stream.kinesis.consumer.factory.class.name": "org.apache.pinot.plugin.stream.kinesis.KinesisConsumerFactory",
            "stream.kinesis.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            "realtime.segment.flush.threshold.time": "3600000",
            "realtime.segment.flush.threshold.rows": "50000",
        }
        c.update(extra or {})
        return c

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
