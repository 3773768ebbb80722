"""Pinot's basic auth on a real `riffle serve`: the admin commands and pinotdb with
credentials work, without them they are refused, and a user reads only its tables."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pinotdb
import pytest

from riffle_harness import run_riffle, transcript_lines

AUTH = """
controller.admin.access.control.principals=admin,reader
controller.admin.access.control.principals.admin.password=verysecret
controller.admin.access.control.principals.reader.password=secret
controller.admin.access.control.principals.reader.permissions=READ
controller.admin.access.control.principals.reader.tables=transcript
pinot.broker.access.control.principals=admin,reader
pinot.broker.access.control.principals.admin.password=verysecret
pinot.broker.access.control.principals.reader.password=secret
pinot.broker.access.control.principals.reader.tables=transcript
"""


def status_of(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_credentials_are_required_and_tables_are_enforced(riffle_factory, tmp_path):
    auth = tmp_path / "auth.properties"
    auth.write_text(AUTH)
    r = riffle_factory()
    r.extra_args = ["--auth-config", str(auth)]
    r.start()
    r.stream_file("transcript-topic").parent.mkdir(parents=True, exist_ok=True)
    r.stream_file("transcript-topic").write_text("\n".join(transcript_lines()) + "\n")
    add = r.add_transcript_table_args()
    # Without credentials, or as the read-only user: refused.
    out = run_riffle(*add)
    assert out.returncode != 0 and "401" in out.stdout + out.stderr, out
    out = run_riffle(*add, "-user", "reader", "-password", "secret")
    assert out.returncode != 0 and "403" in out.stdout + out.stderr, out
    # As admin: added.
    out = run_riffle(*add, "-user", "admin", "-password", "verysecret")
    assert out.returncode == 0 and "successfully added" in out.stdout, out

    # /health stays open; the rest needs credentials.
    assert status_of(r.controller_url + "/health") == 200
    assert status_of(r.controller_url + "/tables") == 401
    reader = "Basic " + base64.b64encode(b"reader:secret").decode()
    assert status_of(r.controller_url + "/tables/transcript", reader) == 200

    # pinotdb with username and password.
    def count(user: str | None, password: str | None) -> int:
        conn = pinotdb.connect(
            host="127.0.0.1",
            port=r.broker_port,
            path="/query/sql",
            scheme="http",
            username=user,
            password=password,
        )
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) FROM transcript")
            return int(cur.fetchall()[0][0])
        finally:
            conn.close()

    import time

    deadline = time.monotonic() + 30
    while count("reader", "secret") != 12:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with pytest.raises(Exception):
        count(None, None)
    with pytest.raises(Exception):
        count("reader", "wrong")

    # PostQuery with Pinot's token (base64 of user:password).
    token = base64.b64encode(b"admin:verysecret").decode()
    out = run_riffle(
        "PostQuery",
        "-brokerHost",
        "127.0.0.1",
        "-brokerPort",
        str(r.broker_port),
        "-authToken",
        token,
        "-query",
        "SELECT COUNT(*) FROM transcript",
    )
    assert out.returncode == 0 and "12" in out.stdout, out
