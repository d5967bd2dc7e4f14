"""Small HTTP(S) servers on 127.0.0.1 that misbehave as a hostile or broken login host would.

``ScriptedServer`` replies to every request with what its ``reply`` function returns
and records each request it received (method, path, body). With ``tls_files`` it
serves HTTPS with the practice org's certificate, so a session that trusts the
practice org's CA bundle trusts it too.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from backstory_desktop.practice_org.tls import TlsFiles


@dataclass
class Reply:
    """One scripted response: status, headers and the body as chunks, each sent as it is produced."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] = ()


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    body: bytes


class ScriptedServer:
    """A threading HTTP server on 127.0.0.1 that replies with ``reply(method, path)``."""

    def __init__(self, reply: Callable[[str, str], Reply], *, tls_files: TlsFiles | None = None) -> None:
        self.received: list[ReceivedRequest] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.received.append(ReceivedRequest(self.command, self.path, body))
                answer = reply(self.command, self.path)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in answer.chunks:
                        self.wfile.write(chunk)
                        server.bytes_sent += len(chunk)
                except OSError:
                    pass  # the client stopped reading and closed the connection

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
