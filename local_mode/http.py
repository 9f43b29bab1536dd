"""A local HTTP front end for Lambda HTTP handlers: requests on 127.0.0.1 become Lambda Function URL
events (payload format 2.0), the handler's answer becomes the HTTP response.

The same handler module that runs in AWS runs here, with the event shape a Function URL delivers: the
path stays percent-encoded in `rawPath`, repeated query keys are comma-joined, headers are lower-case,
text bodies are passed as text and others base64-encoded, bodies over 6 MB are refused with 413 (the
Function URL limit). Standard library only: a ThreadingHTTPServer, one thread per connection.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY_BYTES = 6 * 1024 * 1024  # a Function URL's request payload limit
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # larger refused bodies are not read: the connection is closed
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass
class LocalContext:
    """The Lambda context attributes that handlers and Powertools read."""

    function_name: str = "recsys-recommend-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:recsys-recommend-local"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/recsys-recommend-local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def function_url_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The Function URL event for one HTTP request (target: the request line's path and query)."""
    path, _, query = target.partition("#")[0].partition("?")  # not urlsplit: "//x" is a path here
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if "cookie" in merged:
        event["cookies"] = [c.strip() for c in merged["cookie"].split(";") if c.strip()]
    if body:
        content_type = merged.get("content-type", "").lower()
        text = None
        if content_type.startswith(TEXT_TYPES) or not content_type:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
        else:
            event["body"] = text
    return event


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server: LocalHttpServer

    def _handle(self) -> None:
        if not self.path.startswith("/"):
            return self._reply(400, {"message": "Bad Request"})
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._reply(411, {"message": "Length Required"})
        raw_length = self.headers.get("Content-Length", "0") or "0"
        if not raw_length.isdigit():
            return self._reply(400, {"message": "Bad Request: Content-Length"})
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            remaining = length if length <= DRAIN_LIMIT_BYTES else 0  # read it, so the client sees the 413
            while remaining > 0 and (chunk := self.rfile.read(min(1 << 20, remaining))):
                remaining -= len(chunk)
            return self._reply(413, {"message": "Request Entity Too Large"})
        body = self.rfile.read(length) if length else b""
        event = function_url_event(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        try:
            response = self.server.lambda_handler(
                event, LocalContext(aws_request_id=event["requestContext"]["requestId"])
            )
        except Exception:  # what the Function URL answers when the function itself fails
            self.server.handler_errors += 1
            return self._reply(502, {"message": "Internal Server Error"})
        self._write(response)

    def _write(self, response: dict[str, Any]) -> None:
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
        self.send_response(int(response.get("statusCode", 200)))
        headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(str(v) for v in values)
        headers.setdefault("content-type", "application/json")
        headers["content-length"] = str(len(data))
        for name, value in headers.items():
            self.send_header(name, value)
        for cookie in response.get("cookies") or []:
            self.send_header("set-cookie", cookie)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self._write({"statusCode": status, "body": json.dumps(body)})

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


for _method in METHODS:
    setattr(_RequestHandler, f"do_{_method}", _RequestHandler._handle)


class LocalHttpServer(ThreadingHTTPServer):
    """`LocalHttpServer(handler).start()` serves in a background thread; `.url`; `.stop()`; or
    `.serve_until_interrupted()` in the foreground (the CLI commands)."""

    daemon_threads = True

    def __init__(
        self, lambda_handler: LambdaHandler, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
    ):
        super().__init__((host, port), _RequestHandler)
        self.lambda_handler = lambda_handler
        self.verbose = verbose
        self.handler_errors = 0  # requests whose handler raised (answered 502)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="local-http", daemon=True)
        self._thread.start()
        return self

    def serve_until_interrupted(self) -> None:
        """Serve in this thread until Ctrl-C, then close the socket."""
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        finally:
            self.server_close()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()
