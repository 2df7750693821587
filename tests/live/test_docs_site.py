"""The documentation site, built strictly and served on 127.0.0.1, as headless Chromium shows it.

The build is `mkdocs build --strict`, as `make docs` and `make lint` run it; a standard-library
HTTP server serves the result; Debian's Chromium (no browser download) opens the pages and must
find the API reference rendered from the docstrings and the picture of a session in Phoenix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from tools.chat_browser import TIMEOUT_MS, chromium
from tools.loopback import HOST, ROOT, free_port, running

pytestmark = pytest.mark.servers

BUILD_TIMEOUT = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(directory)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", HOST]
    with running([*command, "--directory", str(directory)], port) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
    finally:
        context.close()


def test_the_api_reference_is_rendered_from_the_docstrings(site: str, page: Page) -> None:
    page.goto(f"{site}/reference/core/")
    heading = page.locator('[id="ops_session.install"]')
    heading.wait_for()
    assert "install" in heading.inner_text()
    # The docstring's summary, rendered under the heading, and the signature beside it.
    body = page.locator("article").inner_text()
    assert "Run every request of a Starlette, FastAPI or Flask app in a session, outermost." in body
    assert page.locator('[id="ops_session.session"]').count() == 1
    assert page.locator(".doc-signature").count() > 10

    page.goto(f"{site}/reference/jobs/")
    page.locator('[id="ops_session.celery.propagate_sessions"]').wait_for()
    assert page.locator('[id="ops_session.rq.SessionJob"]').count() == 1


def test_the_picture_of_a_session_in_phoenix_is_shown(site: str, page: Page) -> None:
    for path in ("/", "/tracing/"):
        page.goto(site + path)
        picture = page.locator('img[src$="phoenix-session.png"]').first
        picture.wait_for()
        picture.scroll_into_view_if_needed()
        page.wait_for_function(
            "image => image.complete && image.naturalWidth > 0", arg=picture.element_handle()
        )
        width = picture.evaluate("image => image.naturalWidth")
        assert width > 400, f"{path}: the picture is {width} pixels wide"


def test_the_navigation_reaches_every_section(site: str, page: Page) -> None:
    page.goto(site)
    navigation = page.locator("nav.md-nav--primary").inner_text()
    for section in (
        "Getting started",
        "Recipe: a chat backend",
        "Frameworks",
        "Where the session goes",
        "Security model",
        "API reference",
        "Troubleshooting",
        "Changelog",
    ):
        assert section in navigation
    page.goto(f"{site}/changelog/")
    assert "[0.1.0] - " in page.locator("article").inner_text()
