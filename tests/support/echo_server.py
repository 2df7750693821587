"""A stdlib HTTP server that answers with the session header it received.

The header is the process-wide session header name (`session_header_name()`), read per request.

`GET /redirect?to=URL` answers 302 to URL instead. Asked as a forward proxy (absolute-form
request target, `GET http://api.internal/`), it answers itself, so clients reach any host name
through it. Run as `python -m tests.support.echo_server PORT HOST...` it serves PORT on each
HOST (127.0.0.1, 127.0.0.2, ... all reach the loopback interface on Linux) until stopped.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ops_session._header import session_header_name

NO_HEADER = "(none)"


class _EchoHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        target = urlsplit(self.path)
        if target.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(target.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (self.headers.get(session_header_name()) or NO_HEADER).encode("latin-1")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve on `host` in a thread until the block exits; yield the base URL."""
    server = ThreadingHTTPServer((host, port), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def echo_servers(*hosts: str) -> Iterator[dict[str, str]]:
    """An echo server on each loopback address in `hosts`, all on one port; yield their base URLs.

    One port lets a resolver override send a host name to any of them with the same URL.
    """
    with ExitStack() as stack:
        first = stack.enter_context(echo_server(hosts[0]))
        port = int(first.rsplit(":", 1)[1])
        others = {host: stack.enter_context(echo_server(host, port)) for host in hosts[1:]}
        yield {hosts[0]: first, **others}


if __name__ == "__main__":
    port, *addresses = sys.argv[1:]
    with ExitStack() as stack:
        for address in addresses:
            stack.enter_context(echo_server(address, int(port)))
        threading.Event().wait()
