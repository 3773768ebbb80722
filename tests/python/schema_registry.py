"""A small schema registry for the tests: the subset of Confluent's REST API that the
Confluent serializers and Riffle's decoders use, in process, on a loopback port.

No schema registry server can be installed here, so this one stands in for it; the data
on the wire still comes from the real Confluent serializers (`confluent-kafka`).

Speaks:
- `POST /subjects/{subject}/versions` (register; the same schema text under a subject keeps
  its id) and `POST /subjects/{subject}` (look a schema up);
- `GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions/{version|latest}`,
  `GET /subjects`, `GET /subjects/{subject}/versions`;
- HTTP basic auth when users are given (401 otherwise);
- https with a given certificate (`tls=`), for the registry TLS options;
- `stop()` / `start()`: the server goes away (connections refused) and comes back on the
  same port with the same schemas, for outage tests.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from riffle_harness import free_ports


class SchemaRegistry:
    def __init__(self, users: Optional[dict[str, str]] = None, tls: Optional[tuple[str, str]] = None):
        """`tls`: (certificate PEM, key PEM) to serve https instead of http."""
        self.users = users or {}
        self.tls = tls
        self.port = free_ports(1)[0]
        self.schemas: list[dict] = []  # index = id - 1: {"schema", "schemaType", "references"}
        self.subjects: dict[str, list[int]] = {}  # subject -> ids by version
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _authorized(self) -> bool:
                if not registry.users:
                    return True
                h = self.headers.get("Authorization", "")
                if not h.startswith("Basic "):
                    return False
                try:
                    user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                except Exception:
                    return False
                return registry.users.get(user) == pw

            def _send(self, status: int, body: dict | list) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                with registry.lock:
                    registry.requests.append(f"{method} {path}")
                if not self._authorized():
                    self._send(401, {"error_code": 401, "message": "Unauthorized"})
                    return
                parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
                body = {}
                if method == "POST":
                    n = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(n) or b"{}")
                with registry.lock:
                    status, answer = registry.answer(method, parts, body)
                self._send(status, answer)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def answer(self, method: str, parts: list[str], body: dict) -> tuple[int, dict | list]:
        not_found = (404, {"error_code": 40401, "message": "Subject not found"})
        if method == "GET" and parts[:2] == ["schemas", "ids"] and len(parts) == 3:
            i = int(parts[2]) - 1
            if not 0 <= i < len(self.schemas):
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, self.schema_json(i + 1)
        if parts[:1] != ["subjects"]:
            return 404, {"error_code": 404, "message": "not found"}
        if len(parts) == 1:
            return 200, sorted(self.subjects)
        subject = parts[1]
        if method == "POST" and len(parts) == 3 and parts[2] == "versions":
            return 200, {"id": self.register(subject, body)}
        if method == "POST" and len(parts) == 2:
            sid = self.find(body)
            versions = self.subjects.get(subject, [])
            if sid is None or sid not in versions:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"subject": subject, "version": versions.index(sid) + 1, **self.schema_json(sid)}
        versions = self.subjects.get(subject)
        if versions is None:
            return not_found
        if method == "GET" and len(parts) == 3 and parts[2] == "versions":
            return 200, list(range(1, len(versions) + 1))
        if method == "GET" and len(parts) == 4 and parts[2] == "versions":
            v = len(versions) if parts[3] in ("latest", "-1") else int(parts[3])
            if not 1 <= v <= len(versions):
                return 404, {"error_code": 40402, "message": "Version not found"}
            sid = versions[v - 1]
            return 200, {"subject": subject, "version": v, **self.schema_json(sid)}
        return 404, {"error_code": 404, "message": "not found"}

    def schema_json(self, sid: int) -> dict:
        s = self.schemas[sid - 1]
        out = {"id": sid, "schema": s["schema"]}
        if s["schemaType"] != "AVRO":
            out["schemaType"] = s["schemaType"]
        if s["references"]:
            out["references"] = s["references"]
        return out

    def find(self, body: dict) -> Optional[int]:
        key = (body.get("schema"), body.get("schemaType") or "AVRO")
        for i, s in enumerate(self.schemas):
            if (s["schema"], s["schemaType"]) == key:
                return i + 1
        return None

    def register(self, subject: str, body: dict) -> int:
        sid = self.find(body)
        if sid is None:
            self.schemas.append(
                {
                    "schema": body["schema"],
                    "schemaType": body.get("schemaType") or "AVRO",
                    "references": body.get("references") or [],
                }
            )
            sid = len(self.schemas)
        versions = self.subjects.setdefault(subject, [])
        if sid not in versions:
            versions.append(sid)
        return sid
