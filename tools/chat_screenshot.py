"""Write a screenshot of the chat page after three turns over fetch and one over the websocket.

    .venv/bin/python -m tools.chat_screenshot [docs/chat-page.png]

Runs the FastAPI example under uvicorn on 127.0.0.1 and Debian's Chromium, and stops both.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .chat_browser import chat, chromium
from .example_services import fastapi_example
from .loopback import ROOT

MESSAGES = ["Hello!", "Which session am I in?", "Thanks."]


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as directory, fastapi_example(Path(directory)) as example:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 760, "height": 560})
            run = chat(page, f"{example.url}/chat", MESSAGES, "And over the websocket?")
            page.screenshot(path=output, full_page=True)
    print(f"Session {run.shown_session_id}: {len(run.turns)} replies; wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "chat-page.png")
