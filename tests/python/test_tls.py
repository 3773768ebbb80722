"""TLS on both ports of a real `riffle serve`: pinotdb over https and the admin commands
with -controllerProtocol / -brokerProtocol https, trusting the test CA."""

from __future__ import annotations

import os
import subprocess
import time

import pinotdb
import pytest

from riffle_harness import TLS_DIR, http_get, run_riffle, transcript_lines


def test_https_with_pinotdb_and_the_admin_commands(riffle_factory):
    r = riffle_factory()
    r.extra_args = ["--tls-cert", str(TLS_DIR / "server.pem"), "--tls-key", str(TLS_DIR / "server.key")]
    r.start()
    assert r.controller_url.startswith("https://")
    r.stream_file("transcript-topic").parent.mkdir(parents=True, exist_ok=True)
    r.stream_file("transcript-topic").write_text("\n".join(transcript_lines()) + "\n")
    env = {**os.environ, "SSL_CERT_FILE": str(TLS_DIR / "ca.pem")}

    def admin(*args: str) -> subprocess.CompletedProcess:
        return run_riffle(*args, env=env)

    out = admin(*r.add_transcript_table_args("-controllerProtocol", "https"))
    assert out.returncode == 0 and "successfully added" in out.stdout, out

    def count() -> int:
        conn = pinotdb.connect(
            host="127.0.0.1", port=r.broker_port, path="/query/sql", scheme="https", verify_ssl=str(TLS_DIR / "ca.pem")
        )
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) FROM transcript")
            return int(cur.fetchall()[0][0])
        finally:
            conn.close()

    deadline = time.monotonic() + 30
    while count() != 12:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    out = admin(
        "PostQuery",
        "-brokerHost",
        "127.0.0.1",
        "-brokerPort",
        str(r.broker_port),
        "-brokerProtocol",
        "https",
        "-query",
        "SELECT COUNT(*) FROM transcript",
    )
    assert out.returncode == 0 and "12" in out.stdout, out

    # Plain HTTP on a TLS port gets no answer; an untrusted client is refused.
    with pytest.raises(Exception):
        http_get(f"http://127.0.0.1:{r.broker_port}/health", timeout=3)
    untrusted = run_riffle(
        "PostQuery", "-brokerHost", "127.0.0.1", "-brokerPort", str(r.broker_port),
        "-brokerProtocol", "https", "-query", "SELECT 1",
        env={k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"},
    )
    assert untrusted.returncode != 0, untrusted
