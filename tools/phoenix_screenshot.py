"""Photograph a session's page in Arize Phoenix with headless Chromium, for docs/ and the README.

    .venv/bin/python -m tools.phoenix_screenshot [--output docs/phoenix-session.png]

Runs what `make demo-phoenix` runs (Phoenix and both examples on 127.0.0.1, the scripted chat in
one session), loads that session's page in Debian's `chromium`, saves the screenshot and stops
everything. The browser gets a throw-away profile and reaches nothing but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .demo_phoenix import phoenix_demo
from .loopback import ROOT

OUTPUT = ROOT / "docs" / "phoenix-session.png"
WINDOW = "1440,900"
# Phoenix's page is an app that fetches its data after loading: virtual time runs until the
# browser has been idle this long (milliseconds), or the real timeout ends the run.
VIRTUAL_TIME_BUDGET = 20_000
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(url: str, *options: str, timeout: float = 90.0) -> str:
    """Run headless Chromium on `url` with `options`; what it printed on standard output."""
    browser = shutil.which("chromium")
    if browser is None:
        raise RuntimeError("chromium is missing: `make system-deps` installs Debian's package.")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        completed = subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW}",
                f"--virtual-time-budget={VIRTUAL_TIME_BUDGET}",
                *options,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    return completed.stdout


def rendered_page(url: str) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    return chromium(url, "--dump-dom")


def screenshot(url: str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    chromium(url, f"--screenshot={output}")
    if not output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"):
        raise RuntimeError(f"Chromium wrote no PNG to {output}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.phoenix_screenshot", description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the PNG goes")
    options = parser.parse_args(argv)
    with phoenix_demo() as demo:
        screenshot(demo.page, options.output)
    print(f"Wrote {options.output}: session {demo.session_id} in Phoenix.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
