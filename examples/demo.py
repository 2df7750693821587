"""`make demo`: start both example services on loopback, send sessions through them, print a table.

Every request below goes to 127.0.0.1; both servers are stopped (by process id) at the end.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import example_services, raw_request  # noqa: E402

from ops_session import SESSION_HEADER_NAME  # noqa: E402

HOSTILE = "<script>alert(1)</script>"
CASES: list[tuple[str, str, bytes | None]] = [
    ("valid id", "/session", b"chat-42"),
    ("no id", "/session", None),
    ("hostile id", "/session", HOSTILE.encode()),
    ("129 characters", "/session", b"a" * 129),
    ("non-ASCII bytes", "/session", b"\xff\xfe caf\xc3\xa9"),
    ("hop, valid id", "/hop", b"chat-42"),
    ("hop, no id", "/hop", None),
    ("hop, hostile id", "/hop", HOSTILE.encode()),
]


def send(base_url: str, path: str, value: bytes | None) -> tuple[str, str, str, str]:
    """Send one request with the raw header bytes; return status, response header and ids seen."""
    port = urlsplit(base_url).port
    assert port is not None
    header = b"" if value is None else SESSION_HEADER_NAME.encode() + b": " + value + b"\r\n"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + header
        + b"\r\n"
    )
    try:
        status, headers, body = raw_request(port, request)
    except OSError as error:  # a server may drop a request it cannot parse
        return f"dropped ({error.__class__.__name__})", "-", "-", "-"
    echoed = ", ".join(headers.get(SESSION_HEADER_NAME.lower(), [])) or "-"
    if status != 200:
        return str(status), echoed, "-", "-"
    seen = httpx.Response(200, content=body).json()
    if "fastapi_app" in seen:
        return (
            str(status),
            echoed,
            seen["fastapi_app"]["session_id"],
            seen["flask_app"]["session_id"],
        )
    return str(status), echoed, seen["session_id"], "-"


def show(value: bytes | None) -> str:
    if value is None:
        return "(none)"
    text = repr(value)[2:-1]
    return text if len(text) <= 28 else text[:25] + "..."


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> None:
    print(
        "Starting the Flask example (gunicorn) and the FastAPI example (uvicorn) on 127.0.0.1 ..."
    )
    with example_services() as (fastapi_url, flask_url):
        print(f"  FastAPI: {fastapi_url}   Flask: {flask_url}\n")
        rows = [["case", "sent header", "status", "response header", "FastAPI saw", "Flask saw"]]
        for name, path, value in CASES:
            rows.append([name, show(value), *send(fastapi_url, path, value)])
        print(table(rows))
    print("\nBoth servers stopped.")
    print(
        "Valid ids pass through unchanged and cross the hop; missing or invalid ones are replaced"
        "\nby a generated UUID4, which the response and the next service carry instead."
    )


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    main()
