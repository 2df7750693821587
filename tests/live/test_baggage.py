"""One session across a real hop that only OpenTelemetry propagates (W3C baggage), on 127.0.0.1.

The services are `apps/baggage_services.py`: uvicorn runs `front`, gunicorn runs `back`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tools.loopback import free_port, gunicorn_command, running, uvicorn_command

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

pytestmark = pytest.mark.servers

APPS = "tests.live.apps.baggage_services"
PROPAGATORS = {"OTEL_PROPAGATORS": "tracecontext,baggage"}


@pytest.fixture(scope="module")
def back_url() -> Iterator[str]:
    port = free_port()
    with running(gunicorn_command(f"{APPS}:back", port), port, env=PROPAGATORS) as url:
        yield url


def front(back_url: str, **env: str) -> Iterator[str]:
    port = free_port()
    environment = {**PROPAGATORS, "BACK_URL": back_url, **env}
    with running(uvicorn_command(f"{APPS}:front", port), port, env=environment) as url:
        yield url


@pytest.fixture(scope="module")
def front_url(back_url: str) -> Iterator[str]:
    # Baggage goes wherever trace context goes: the outgoing rule must name it.
    yield from front(back_url, OPS_SESSION_OUTGOING_CARRIERS="baggage")


def test_the_session_crosses_the_hop_in_baggage(front_url: str) -> None:
    response = httpx.get(front_url, headers={SESSION_HEADER_NAME: "chat-42"}, timeout=10)
    seen = response.json()
    assert (seen["front"], seen["back"]) == ("chat-42", "chat-42")
    assert seen["back got the session header"] is None  # no hook and no ops_session propagator
    assert seen["back got baggage"] == "session.id=chat-42"
    assert seen["back got traceparent"] is not None


def test_a_generated_session_crosses_the_hop_too(front_url: str) -> None:
    seen = httpx.get(front_url, timeout=10).json()
    assert is_valid_session_id(seen["front"]) and seen["back"] == seen["front"]


def test_hostile_baggage_never_breaks_the_front(front_url: str) -> None:
    for baggage in [
        "session.id=%3Cscript%3E",
        "k=v," * 3000,
        ",;=" * 100,
        "session.id=" + "a" * 200,
    ]:
        response = httpx.get(front_url, headers={"baggage": baggage}, timeout=10)
        seen = response.json()
        assert response.status_code == 200 and seen["back"] == seen["front"]
        assert is_valid_session_id(seen["front"]) and "script" not in seen["front"]


def test_without_a_rule_naming_baggage_the_id_stays_out_of_it(back_url: str) -> None:
    for url in front(back_url):  # no rule names the baggage carrier
        seen = httpx.get(url, headers={SESSION_HEADER_NAME: "chat-42"}, timeout=10).json()
    assert seen["front"] == "chat-42" and seen["back"] != "chat-42"
    assert seen["back got baggage"] is None
