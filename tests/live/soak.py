"""A bounded soak: tens of thousands of requests with mixed session headers, many at a time.

Run by the test suite (tests/test_soak.py) and by `make soak`, which prints the figures that
docs/reliability.md quotes. Every request goes to a server this module started on 127.0.0.1,
and the server is stopped by process id at the end.

Each response is checked: status 200, one session header holding a valid id, the id the handler
saw in the body equal to it, and the id that was sent when that was valid. Any other outcome is
counted as an error or as cross-talk, and the worker's resident memory is read after a warm-up
and at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.hostile import sendable_values
from tools.loopback import free_port, gunicorn_command, started, uvicorn_command

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

HOSTILE = sendable_values()
WARM_UP = 2_000


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    cross_talk: int = 0
    rss_kib: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, detail: str) -> None:
        if kind == "cross-talk":
            self.cross_talk += 1
        else:
            self.errors += 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {detail}")


def header_for(number: int) -> tuple[bytes | None, str | None]:
    """The header value of request `number`, and the id the response must carry (if known)."""
    kind = number % 4
    if kind in (0, 1):
        session_id = f"soak-{number}"
        return session_id.encode(), session_id
    if kind == 2:
        return None, None
    return HOSTILE[number // 4 % len(HOSTILE)], None


async def client(port: int, numbers: range, tally: Tally) -> None:
    """Send requests `numbers` one after another on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for number in numbers:
            value, expected = header_for(number)
            header = (
                b"" if value is None else SESSION_HEADER_NAME.encode() + b": " + value + b"\r\n"
            )
            writer.write(b"GET /session HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers: dict[str, list[str]] = {}
            for line in lines[1:]:
                if line:
                    name, _, rest = line.partition(":")
                    headers.setdefault(name.strip().lower(), []).append(rest.strip())
            body = await reader.readexactly(int(headers["content-length"][0]))
            tally.requests += 1
            check(number, lines[0], headers, body, expected, tally)
            if headers.get("connection") == ["close"]:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def check(
    number: int,
    status_line: str,
    headers: dict[str, list[str]],
    body: bytes,
    expected: str | None,
    tally: Tally,
) -> None:
    if not status_line.startswith("HTTP/1.1 200"):
        tally.fail("error", f"request {number}: {status_line}")
        return
    echoed = headers.get(SESSION_HEADER_NAME.lower(), [])
    if len(echoed) != 1 or not is_valid_session_id(echoed[0]):
        tally.fail("error", f"request {number}: session header {echoed!r}")
        return
    seen = json.loads(body)["id"]
    if seen != echoed[0] or (expected is not None and seen != expected):
        tally.fail("cross-talk", f"request {number}: sent {expected}, header {echoed}, saw {seen}")
    elif expected is None and uuid.UUID(seen).version != 4:
        tally.fail("error", f"request {number}: replaced by {seen!r}, not a UUID4")


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def worker_pid(server_pid: int) -> int:
    """The process that runs the app: gunicorn's single worker, or the server itself."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return int(children[0]) if children else server_pid


async def load(port: int, first: int, count: int, connections: int, tally: Tally) -> None:
    numbers = range(first, first + count)
    await asyncio.gather(
        *(client(port, numbers[offset::connections], tally) for offset in range(connections))
    )


def soak(command: list[str], port: int, requests: int, connections: int) -> tuple[Tally, float]:
    tally = Tally()
    with started(command, port) as server:
        pid = worker_pid(server.pid)
        asyncio.run(load(port, 0, WARM_UP, connections, tally))
        tally.rss_kib.append(resident_kib(pid))
        start = time.monotonic()
        asyncio.run(load(port, WARM_UP, requests, connections, tally))
        elapsed = time.monotonic() - start
        tally.rss_kib.append(resident_kib(pid))
    return tally, elapsed


def _uvicorn(port: int) -> list[str]:
    return uvicorn_command("tests.live.apps.asgi_app:app", port)


def _gunicorn(port: int) -> list[str]:
    return gunicorn_command("tests.live.apps.wsgi_app:app", port)


SERVERS: dict[str, Callable[[int], list[str]]] = {
    "uvicorn": _uvicorn,
    "gunicorn-gthread": _gunicorn,
}


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    failed = False
    for name, command in SERVERS.items():
        port = free_port()
        tally, elapsed = soak(command(port), port, requests, connections=100)
        first, last = tally.rss_kib
        print(
            f"{name}: {tally.requests:,} requests ({requests:,} after {WARM_UP:,} warm-up) "
            f"in {elapsed:.1f} s over 100 connections, {tally.errors} errors, "
            f"{tally.cross_talk} cross-talk, worker RSS {first:,} KiB -> {last:,} KiB "
            f"({last - first:+,} KiB)"
        )
        for example in tally.examples:
            print("   ", example)
        failed = failed or bool(tally.errors or tally.cross_talk)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
