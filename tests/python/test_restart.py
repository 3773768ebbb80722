"""A crash (SIGKILL) and a restart on the same data directory: consuming segments live in
memory and are re-read from the stream, so every row is counted exactly once."""

from __future__ import annotations

import json
import signal
import time

from riffle_harness import TRANSCRIPT_TOPIC, append_lines, transcript_lines, wait_until


def test_restart_keeps_every_row_once(riffle_factory):
    r = riffle_factory(name="restart")
    r.start()
    partition = r.stream_file(TRANSCRIPT_TOPIC)
    append_lines(partition, transcript_lines())
    r.add_transcript_table()
    r.wait_count("transcript", 12)

    ports = (r.controller_port, r.broker_port)
    r.kill(signal.SIGKILL)
    r.start(ports)  # same data directory; same ports unless they were taken meanwhile

    # Rows are re-read from the stream: 12 again, never more.
    r.wait_count("transcript", 12)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert r.count("transcript") == 12
        time.sleep(0.1)

    # Consumption continues after the restart.
    more = [
        {"studentID": 213, "firstName": "Ana", "lastName": "Silva", "gender": "Female",
         "subject": "Maths", "score": 3.9, "timestampInEpoch": 1572940800000},
        {"studentID": 213, "firstName": "Ana", "lastName": "Silva", "gender": "Female",
         "subject": "Physics", "score": 3.7, "timestampInEpoch": 1572940800000},
    ]
    append_lines(partition, [json.dumps(m) for m in more])
    r.wait_count("transcript", 14)
    rows = r.query("SELECT COUNT(*) FROM transcript WHERE studentID = %(id)s", {"id": 213})
    assert rows == [[2]]
    wait_until("the count to stay 14", lambda: r.count("transcript"), lambda c: c == 14)
