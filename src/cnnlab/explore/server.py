"""The explorer's web server, on the standard library: the page's own files (a fixed list, nothing else from
disk) and a small JSON API over the runs it was started with. Loopback only unless asked otherwise; a bad
request gets HTTP 400 with the reason and the server keeps serving.

    GET  /                      the page              GET  /static/<file>      its script and style
    GET  /api/runs              the runs, their stages and images
    GET  /api/image?run=&index= one validation image, raw pixels
    POST /api/forward           {run, input}: every stage's values and the class probabilities
    POST /api/unit              {run, stage, channel, row, col, input}: one unit's field, filter, examples, shifts
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cnnlab.explore import views
from cnnlab.explore.runs import ExploreRun
from cnnlab.explore.views import BadRequest

#: the page's files: the only paths served from disk
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
          "/static/explore.css": ("explore.css", "text/css; charset=utf-8")}
MAX_BODY = 16 << 20  # bytes a request body may hold


class Explorer:
    """The served runs and the one lock their networks are used under."""

    def __init__(self, runs: Sequence[ExploreRun], images: int) -> None:
        self.runs = list(runs)
        self.images = images
        self.lock = threading.Lock()

    def run(self, value: Any) -> ExploreRun:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(self.runs):
            raise BadRequest(f"run must be a whole number in 0..{len(self.runs) - 1}, got {value!r}")
        return self.runs[value]

    def get(self, path: str, query: dict[str, str]) -> Any:
        with self.lock:
            if path == "/api/runs":
                return [views.run_info(i, run, self.images) for i, run in enumerate(self.runs)]
            if path == "/api/image":
                index = query.get("index", "")
                if not index.isdigit():
                    raise BadRequest(f"index must be a whole number, got {index!r}")
                return views.image(self.run(query.get("run")), int(index), self.images)
        return None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        with self.lock:
            run = self.run(body.get("run"))
            if path == "/api/forward":
                return views.forward(run, views.decode_image(run, body.get("input")))
            if path == "/api/unit":
                return views.unit(run, body.get("stage"), body.get("channel"), body.get("row"), body.get("col"),
                                  views.decode_image(run, body.get("input")), self.images)
        return None


def handler_for(explorer: Explorer, quiet: bool = True) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cnnlab-explore"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 — the base class's name
            if not quiet:
                super().log_message(format, *args)

        def do_GET(self) -> None:  # noqa: N802 — http.server's name
            url = urlsplit(self.path)
            if url.path in STATIC:
                name, kind = STATIC[url.path]
                self.reply(HTTPStatus.OK, (resources.files("cnnlab.explore") / "static" / name).read_bytes(), kind)
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.answer(lambda: explorer.get(url.path, query))

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)

            def call() -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise BadRequest(f"the request body must hold 1..{MAX_BODY} bytes of JSON, got {length}")
                try:
                    body = json.loads(self.rfile.read(length))
                except (ValueError, UnicodeDecodeError):
                    raise BadRequest("the request body is not JSON") from None
                if not isinstance(body, dict):
                    raise BadRequest("the request body must be a JSON object")
                return explorer.post(url.path, body)

            self.answer(call)

        def answer(self, call) -> None:
            try:
                result = call()
            except BadRequest as err:
                self.reply(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(err)}).encode(), "application/json")
                return
            except Exception as err:  # noqa: BLE001 — one bad request must not stop the server
                self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps({"error": f"{type(err).__name__}: {err}"})
                           .encode(), "application/json")
                return
            if result is None:
                self.reply(HTTPStatus.NOT_FOUND, json.dumps({"error": f"no such path: {self.path[:200]}"}).encode(),
                           "application/json")
                return
            self.reply(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

        def reply(self, status: HTTPStatus, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

    return Handler


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> ThreadingHTTPServer:
    """The server, bound (port 0: any free port); `serve_forever()` runs it."""
    server = ThreadingHTTPServer((host, port), handler_for(explorer, quiet))
    server.daemon_threads = True
    return server
