"""Drive the FastAPI example's chat page in headless Chromium (Debian's, no browser download).

Shared by the browser tests and `tools/chat_screenshot.py`; it imports neither.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser, Page, Request, WebSocket, sync_playwright

from ops_session import SESSION_HEADER_NAME

# Quiet, reproducible runs: no network traffic of the browser's own, no GPU, no sandbox (CI
# runs as root, where Chromium's sandbox cannot start).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 15_000


def chromium_path() -> str:
    """Debian's Chromium (`apt-get install chromium`), or `$CHROMIUM`."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        raise RuntimeError("Chromium is missing: install it with `apt-get install chromium`.")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (and its processes ended) when the block exits."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Turn:
    via: str
    """`fetch` or `websocket`."""
    session_id: str
    text: str


@dataclass
class ChatRun:
    """What the page showed, and what the browser sent."""

    shown_session_id: str = ""
    turns: list[Turn] = field(default_factory=list)
    sent_headers: list[str | None] = field(default_factory=list)
    """The session header of each `POST /chat/turn` the browser sent (`None`: not sent)."""
    websocket_urls: list[str] = field(default_factory=list)


def chat(page: Page, url: str, messages: Sequence[str], socket_message: str | None) -> ChatRun:
    """Open the chat page at `url`, send `messages` over fetch, then one over the websocket."""
    run = ChatRun()

    def on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/chat/turn"):
            run.sent_headers.append(request.headers.get(SESSION_HEADER_NAME.lower()))

    def on_websocket(websocket: WebSocket) -> None:
        run.websocket_urls.append(websocket.url)

    page.on("request", on_request)
    page.on("websocket", on_websocket)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    for number, message in enumerate(messages, start=1):
        page.fill("#message", message)
        page.click("#send")
        page.wait_for_selector(f"#turns li:nth-child({number})")
    if socket_message is not None:
        page.wait_for_selector("#send-socket:enabled")
        page.fill("#message", socket_message)
        page.click("#send-socket")
        page.wait_for_selector('#turns li[data-via="websocket"]')
    run.shown_session_id = page.text_content("#session-id") or ""
    for item in page.query_selector_all("#turns li"):
        run.turns.append(
            Turn(
                item.get_attribute("data-via") or "",
                item.get_attribute("data-session") or "",
                item.text_content() or "",
            )
        )
    return run
