"""Ids a browser can send: other header names, a query parameter, a cookie; and `set_cookie`.

Every case runs against both adapters through one small harness that sends raw request bytes
(ASGI) or latin-1 text (WSGI) and reports what the app saw and what the response carried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from wsgiref.util import setup_testing_defaults

import pytest

from ops_session import (
    Jsonable,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    require_session,
)
from ops_session._core import generate_session_id, is_valid_session_id
from ops_session._policy import SessionPolicy
from ops_session.asgi import Message, Receive, Scope, Send

from .support.hostile import hostile_bytes, hostile_cookie_headers

HEADER = b"mirascope-session-id"
LEGACY = "X-Mirascope-Session-Id"


@dataclass
class Outcome:
    status: int
    headers: list[tuple[str, str]]
    """Response headers, names lower-cased."""
    session_id: str | None
    """The session the app ran in (`None`: the app was not called)."""
    request_header: str | None
    """The session header the app saw in its request."""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def echoed(self) -> str:
        (value,) = self.values("mirascope-session-id")
        return value


def call_asgi(
    options: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
    query: bytes,
    scheme: str,
    response_headers: list[tuple[bytes, bytes]],
) -> Outcome:
    seen: list[tuple[str | None, str | None]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        current = current_session()
        header = [v.decode("latin-1") for k, v in scope["headers"] if k == HEADER]
        seen.append((current.id if current else None, header[0] if header else None))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "scheme": scheme,
        "method": "GET",
        "path": "/",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
    }
    asyncio.run(SessionMiddleware(app, **options)(scope, receive, send))
    start = sent[0]
    return Outcome(
        start["status"],
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]],
        *(seen[0] if seen else (None, None)),
    )


def call_wsgi(
    options: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
    query: bytes,
    scheme: str,
    response_headers: list[tuple[bytes, bytes]],
) -> Outcome:
    seen: list[tuple[str | None, str | None]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        current = current_session()
        seen.append((current.id if current else None, environ.get("HTTP_MIRASCOPE_SESSION_ID")))
        start_response(
            "200 OK", [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response_headers]
        )
        return [b"ok"]

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["wsgi.url_scheme"] = "https" if scheme == "https" else "http"
    for name, value in headers:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        # Servers fold repeated headers; a cookie with "; ", as RFC 9113 asks for HTTP/2.
        joiner = "; " if key == "HTTP_COOKIE" else ","
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]}{joiner}{text}" if key in environ else text
    answer: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.append((status, headers))

    body = WSGISessionMiddleware(app, **options)(environ, start_response)
    list(body)
    status, response = answer[0]
    return Outcome(
        int(status.split()[0]),
        [(k.lower(), v) for k, v in response],
        *(seen[0] if seen else (None, None)),
    )


Call = Callable[..., Outcome]
ADAPTERS = [pytest.param(call_asgi, id="asgi"), pytest.param(call_wsgi, id="wsgi")]


@pytest.fixture(params=ADAPTERS)
def call(request: pytest.FixtureRequest) -> Call:
    adapter: Call = request.param

    def run(
        *headers: tuple[bytes, bytes],
        query: bytes = b"",
        scheme: str = "http",
        response_headers: list[tuple[bytes, bytes]] | None = None,
        **options: Any,
    ) -> Outcome:
        return adapter(options, list(headers), query, scheme, response_headers or [])

    return run


def is_generated(value: str | None) -> bool:
    return value is not None and uuid.UUID(value).version == 4


BROWSER: dict[str, Any] = {"also_accept": [LEGACY], "query_param": "session_id", "cookie": "sid"}


# --- where the id comes from ---------------------------------------------------------------


def test_query_param_gives_the_id_when_the_header_is_absent(call: Call) -> None:
    outcome = call(query=b"room=1&session_id=chat-7", query_param="session_id")
    assert outcome.session_id == "chat-7"
    assert outcome.echoed == "chat-7"
    assert outcome.request_header == "chat-7"  # shown to the app in the session header


def test_query_param_is_percent_decoded_as_forms_encode_it(call: Call) -> None:
    outcome = call(query=b"session_id=user%3A7%2Bchat%3D1", query_param="session_id")
    assert outcome.session_id == "user:7+chat=1"
    outcome = call(query=b"session%5Fid=enc-1", query_param="session_id")
    assert outcome.session_id == "enc-1"


def test_cookie_gives_the_id_when_header_and_query_param_are_absent(call: Call) -> None:
    outcome = call((b"cookie", b"theme=dark; sid=chat-8; other=1"), cookie="sid")
    assert outcome.session_id == "chat-8"
    assert outcome.echoed == "chat-8"
    assert outcome.values("set-cookie") == []  # reading a cookie never writes one


def test_quoted_cookie_value(call: Call) -> None:
    assert call((b"cookie", b'sid="chat-9"'), cookie="sid").session_id == "chat-9"


def test_cookie_names_are_case_sensitive_and_first_one_wins(call: Call) -> None:
    assert is_generated(call((b"cookie", b"SID=chat-1"), cookie="sid").session_id)
    outcome = call((b"cookie", b"sid=first; sid=second"), cookie="sid")
    assert outcome.session_id == "first"


def test_cookie_split_over_two_fields_as_http2_may_send_it(call: Call) -> None:
    outcome = call((b"cookie", b"a=1"), (b"cookie", b"sid=split-1"), cookie="sid")
    assert outcome.session_id == "split-1"


def test_header_wins_over_every_other_place(call: Call) -> None:
    outcome = call(
        (HEADER, b"from-header"),
        (LEGACY.encode(), b"from-legacy"),
        (b"cookie", b"sid=from-cookie"),
        query=b"session_id=from-query",
        **BROWSER,
    )
    assert outcome.session_id == "from-header"
    assert outcome.echoed == "from-header"


def test_other_header_wins_over_query_param_and_cookie(call: Call) -> None:
    outcome = call(
        (b"x-mirascope-session-id", b"from-legacy"),
        (b"cookie", b"sid=from-cookie"),
        query=b"session_id=from-query",
        **BROWSER,
    )
    assert outcome.session_id == "from-legacy"
    assert outcome.values("mirascope-session-id") == ["from-legacy"]
    assert outcome.values("x-mirascope-session-id") == []  # never emitted
    assert outcome.request_header == "from-legacy"


def test_cookie_wins_over_query_param(call: Call) -> None:
    """Only the site sets its cookie; anyone can send a link that names an id (fixation)."""
    outcome = call((b"cookie", b"sid=from-cookie"), query=b"session_id=from-query", **BROWSER)
    assert outcome.session_id == "from-cookie"
    outcome = call(query=b"session_id=from-query", **BROWSER)
    assert outcome.session_id == "from-query"  # without a cookie the query parameter counts


def test_other_header_names_first_valid_one_wins_in_the_order_given(call: Call) -> None:
    names = {"also_accept": ("X-First", "X-Second")}
    both = call((b"x-second", b"second"), (b"x-first", b"first"), **names)
    assert both.session_id == "first"
    invalid_first = call((b"x-first", b"a b"), (b"x-second", b"second"), **names)
    assert invalid_first.session_id == "second"
    invalid_main = call((HEADER, b"<bad>"), (b"x-second", b"second"), **names)
    assert invalid_main.session_id == "second"
    assert invalid_main.request_header == "second"


def test_empty_values_count_as_absent(call: Call) -> None:
    outcome = call(
        (LEGACY.encode(), b""),
        (b"cookie", b"sid=from-cookie"),
        query=b"session_id=",
        **BROWSER,
    )
    assert outcome.session_id == "from-cookie"
    assert is_generated(call((b"cookie", b"sid="), cookie="sid").session_id)


def test_other_parameters_that_contain_the_name_are_not_it(call: Call) -> None:
    outcome = call(query=b"xsession_id=1&session_idx=2&a=session_id", query_param="session_id")
    assert is_generated(outcome.session_id)


def test_options_off_ignore_query_param_and_cookie(call: Call) -> None:
    outcome = call(
        (b"x-mirascope-session-id", b"legacy"),
        (b"cookie", b"sid=chat-1; session_id=chat-1"),
        query=b"session_id=chat-1",
    )
    assert is_generated(outcome.session_id)


# --- invalid values: generated or rejected, never echoed --------------------------------------


@pytest.mark.parametrize("raw", hostile_bytes())
def test_hostile_query_param_is_replaced_never_echoed_nor_logged(
    call: Call, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    outcome = call(query=b"session_id=" + quote(raw).encode(), query_param="session_id")
    assert is_generated(outcome.session_id)
    assert outcome.echoed == outcome.session_id == outcome.request_header
    (record,) = [r for r in caplog.records if r.name == "ops_session"]
    assert re.fullmatch(
        r"Invalid session_id query parameter \(\d+ characters\): replaced by a generated id\.",
        record.getMessage(),
    )


@pytest.mark.parametrize("raw", hostile_bytes())
def test_raw_hostile_query_bytes_are_replaced(call: Call, raw: bytes) -> None:
    outcome = call(query=b"session_id=" + raw, query_param="session_id")
    assert is_generated(outcome.session_id)


@pytest.mark.parametrize("cookie_header", hostile_cookie_headers())
def test_hostile_cookie_is_replaced_never_echoed(call: Call, cookie_header: bytes) -> None:
    outcome = call((b"cookie", cookie_header), cookie="sid", set_cookie=True)
    assert is_generated(outcome.session_id)
    assert outcome.echoed == outcome.session_id
    (set_cookie,) = outcome.values("set-cookie")
    assert set_cookie.startswith(f"sid={outcome.session_id}; ")


def test_invalid_header_is_not_overridden_by_query_param_or_cookie(call: Call) -> None:
    outcome = call(
        (HEADER, b"a b"), (b"cookie", b"sid=from-cookie"), query=b"session_id=q", **BROWSER
    )
    assert is_generated(outcome.session_id)


def test_invalid_cookie_is_not_overridden_by_the_query_param(call: Call) -> None:
    outcome = call((b"cookie", b"sid=%3Cx%3E"), query=b"session_id=from-query", **BROWSER)
    assert is_generated(outcome.session_id)
    outcome = call((b"cookie", b"sid=from-cookie"), query=b"session_id=%3Cx%3E", **BROWSER)
    assert outcome.session_id == "from-cookie"  # the query parameter is not even read


@pytest.mark.parametrize(
    ("headers", "query", "place"),
    [
        pytest.param([(HEADER, b"a b")], b"", "Mirascope-Session-Id header", id="header"),
        pytest.param([(b"x-mirascope-session-id", b"<x>")], b"", f"{LEGACY} header", id="other"),
        pytest.param([], b"session_id=a+b", "session_id query parameter", id="query"),
        pytest.param([(b"cookie", b"sid=<x>")], b"", "sid cookie", id="cookie"),
    ],
)
def test_reject_mode_answers_400_naming_every_place(
    call: Call,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
    place: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    outcome = call(*headers, query=query, on_invalid="reject", **BROWSER)
    assert outcome.status == 400
    assert outcome.session_id is None
    assert outcome.values("mirascope-session-id") == []
    (record,) = [r for r in caplog.records if r.name == "ops_session"]
    assert record.getMessage().startswith(f"Invalid {place} (")
    assert record.getMessage().endswith(": rejected.")


def test_rejection_body_names_the_places(call: Call) -> None:
    policy = WSGISessionMiddleware(lambda *args: [], on_invalid="reject", **BROWSER).policy
    assert policy.rejection_body == (
        b"Invalid session id in the Mirascope-Session-Id header, the X-Mirascope-Session-Id "
        b"header, the sid cookie or the session_id query parameter.\n"
    )


def test_custom_validator_applies_to_every_place(call: Call) -> None:
    options: dict[str, Any] = {**BROWSER, "validator": str.isdigit, "generator": lambda: "0"}
    assert call(query=b"session_id=123", **options).session_id == "123"
    assert call(query=b"session_id=abc", **options).session_id == "0"
    assert call((b"cookie", b"sid=45"), **options).session_id == "45"
    assert call((b"x-mirascope-session-id", b"67"), **options).session_id == "67"


# --- set_cookie -----------------------------------------------------------------------------


def test_no_set_cookie_unless_asked(call: Call) -> None:
    for options in ({}, BROWSER):
        assert call(query=b"session_id=chat-1", **options).values("set-cookie") == []


@pytest.mark.parametrize(("scheme", "secure"), [("http", ""), ("https", "; Secure")])
def test_set_cookie_attributes(call: Call, scheme: str, secure: str) -> None:
    outcome = call((HEADER, b"chat-1"), scheme=scheme, cookie="sid", set_cookie=True)
    assert outcome.values("set-cookie") == [
        f"sid=chat-1; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax{secure}"
    ]


def test_set_cookie_lifetime_and_existing_cookies_kept(call: Call) -> None:
    outcome = call(
        response_headers=[(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        cookie="sid",
        set_cookie=True,
        cookie_max_age=600,
    )
    generated = outcome.session_id
    assert is_generated(generated)
    assert outcome.values("set-cookie") == [
        "a=1",
        "b=2",
        f"sid={generated}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax",
    ]


def test_app_that_sets_the_session_header_itself_gets_no_cookie_from_us(call: Call) -> None:
    outcome = call(response_headers=[(HEADER, b"app-1")], cookie="sid", set_cookie=True)
    assert outcome.values("set-cookie") == []


def test_cookie_unsafe_ids_of_a_custom_validator_are_not_written_into_a_cookie(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    options: dict[str, Any] = {"cookie": "sid", "set_cookie": True, "validator": bool}
    outcome = call((HEADER, b"a;Domain=evil.example"), **options)
    assert outcome.session_id == "a;Domain=evil.example"
    assert outcome.values("set-cookie") == []
    assert "a cookie value cannot hold it" in caplog.text
    assert call((HEADER, b"ok-1"), **options).values("set-cookie")[0].startswith("sid=ok-1;")


def test_websocket_accept_carries_the_header_and_cookie() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        current = current_session()
        await send({"type": "websocket.send", "text": current.id if current else ""})
        await send({"type": "websocket.close", "code": 1000})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "websocket",
        "scheme": "wss",
        "path": "/ws",
        "query_string": b"",
        "headers": [(HEADER, b"ws-1"), (b"cookie", b"sid=old")],
    }
    middleware = SessionMiddleware(app, query_param="session_id", cookie="sid", set_cookie=True)
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["headers"] == [
        (HEADER, b"ws-1"),
        (b"cache-control", b"private"),
        (b"set-cookie", b"sid=ws-1; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax; Secure"),
        (b"vary", b"Cookie"),
    ]
    assert sent[1]["text"] == "ws-1"


# --- misconfiguration -----------------------------------------------------------------------


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    pass


BUILDERS = [
    pytest.param(lambda **options: SessionMiddleware(asgi_app, **options), id="asgi"),
    pytest.param(lambda **options: WSGISessionMiddleware(lambda *a: [], **options), id="wsgi"),
]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"also_accept": "X-Id"}, TypeError, "also_accept must be a list or tuple"),
        ({"also_accept": 3}, TypeError, "also_accept must be a list or tuple"),
        ({"also_accept": ["bad name"]}, ValueError, "got 'bad name'"),
        ({"also_accept": [b"X-Id"]}, ValueError, "got b'X-Id'"),
        ({"also_accept": ["mirascope-session-id"]}, ValueError, "twice, or with header_name"),
        ({"also_accept": ["X-A", "x-a"]}, ValueError, "twice"),
        ({"query_param": ""}, ValueError, "query_param must be None or a parameter name"),
        ({"query_param": "a&b"}, ValueError, "got 'a&b'"),
        ({"query_param": 1}, ValueError, "got 1"),
        ({"cookie": "a;b"}, ValueError, "cookie must be None or a cookie name"),
        ({"cookie": ""}, ValueError, "got ''"),
        ({"cookie": "sid", "set_cookie": "yes"}, TypeError, "set_cookie must be a bool"),
        ({"set_cookie": True}, ValueError, "needs cookie set"),
        ({"cookie": "sid", "cookie_max_age": 0}, ValueError, "positive number of seconds"),
        ({"cookie": "sid", "cookie_max_age": True}, TypeError, "cookie_max_age must be an int"),
        ({"cookie": "sid", "cookie_max_age": 1.5}, TypeError, "got 1.5"),
    ],
)
def test_bad_browser_options_raise_at_construction(
    build: Callable[..., Any], options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build(**options)


def test_a_policy_without_a_reader_refuses_other_places() -> None:
    with pytest.raises(TypeError, match="cannot read ids from other headers"):
        SessionPolicy[Any](
            header_name="Mirascope-Session-Id",
            generator=generate_session_id,
            validator=is_valid_session_id,
            on_invalid="generate",
            attributes=None,
            update_request_header=True,
            query_param="session_id",
        )


# --- the cookie: the app's wins, links never fix it, caches keep it private ------------------

COOKIE: dict[str, Any] = {"cookie": "sid", "set_cookie": True}


@pytest.mark.parametrize(
    "app_cookie",
    [b"sid=; Path=/; Max-Age=0", b"sid=rotated-1; Path=/", b" sid =rotated-2"],
    ids=["deleted", "rotated", "spaced"],
)
def test_the_apps_own_session_cookie_wins(call: Call, app_cookie: bytes) -> None:
    outcome = call(
        (b"cookie", b"sid=chat-1"),
        response_headers=[(b"set-cookie", b"theme=dark"), (b"set-cookie", app_cookie)],
        **COOKIE,
    )
    assert outcome.values("set-cookie") == ["theme=dark", app_cookie.decode()]


def test_a_query_parameter_id_is_never_written_into_the_cookie(call: Call) -> None:
    outcome = call(query=b"session_id=from-link", query_param="session_id", **COOKIE)
    assert outcome.session_id == "from-link"  # this request runs in it ...
    assert outcome.values("set-cookie") == []  # ... but the browser does not keep it


def test_a_response_with_our_cookie_is_private_to_caches_and_varies_on_cookie(call: Call) -> None:
    outcome = call((HEADER, b"chat-1"), **COOKIE)
    assert outcome.values("cache-control") == ["private"]
    assert outcome.values("vary") == ["Cookie"]


@pytest.mark.parametrize(
    ("app_headers", "cookie_sent"),
    [
        pytest.param([(b"cache-control", b"public, max-age=60")], False, id="public"),
        pytest.param([(b"cache-control", b"max-age=60")], False, id="max-age"),
        pytest.param([(b"cache-control", b"S-Maxage=60")], False, id="s-maxage"),
        pytest.param([(b"cache-control", b"private, max-age=60")], True, id="private"),
        pytest.param([(b"cache-control", b"no-store")], True, id="no-store"),
        pytest.param([(b"cache-control", b"No-Cache")], True, id="no-cache"),
        pytest.param(
            [(b"cache-control", b"max-age=60"), (b"cache-control", b"private")], True, id="two"
        ),
    ],
)
def test_the_apps_cache_control_stands_and_a_shareable_response_gets_no_cookie(
    call: Call, app_headers: list[tuple[bytes, bytes]], cookie_sent: bool
) -> None:
    outcome = call((HEADER, b"chat-1"), response_headers=app_headers, **COOKIE)
    assert outcome.values("cache-control") == [value.decode() for _, value in app_headers]
    assert bool(outcome.values("set-cookie")) is cookie_sent


@pytest.mark.parametrize(
    ("vary", "added"),
    [
        pytest.param(b"Accept-Encoding", ["Cookie"], id="other"),
        pytest.param(b"accept-encoding, COOKIE", [], id="covered"),
        pytest.param(b"*", [], id="star"),
    ],
)
def test_vary_is_added_unless_the_apps_covers_cookie(
    call: Call, vary: bytes, added: list[str]
) -> None:
    outcome = call((HEADER, b"chat-1"), response_headers=[(b"vary", vary)], **COOKIE)
    assert outcome.values("vary") == [vary.decode(), *added]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_reject_mode_clears_a_stale_invalid_cookie(call: Call, scheme: str) -> None:
    outcome = call((b"cookie", b"sid=<stale>"), scheme=scheme, on_invalid="reject", **COOKIE)
    assert outcome.status == 400
    secure = "; Secure" if scheme == "https" else ""
    assert outcome.values("set-cookie") == [
        f"sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    ]


def test_reject_mode_leaves_a_valid_cookie_and_one_it_does_not_own(call: Call) -> None:
    valid = call((HEADER, b"a b"), (b"cookie", b"sid=ok-1"), on_invalid="reject", **COOKIE)
    assert valid.status == 400 and valid.values("set-cookie") == []
    not_ours = call((b"cookie", b"sid=<x>"), cookie="sid", on_invalid="reject")
    assert not_ours.status == 400 and not_ours.values("set-cookie") == []


@pytest.mark.parametrize("placeholder", [b"null", b"undefined", b"None"])
def test_clients_sending_a_placeholder_get_sessions_of_their_own(
    call: Call, placeholder: bytes
) -> None:
    first, second = call((HEADER, placeholder)), call((HEADER, placeholder))
    assert is_generated(first.session_id) and is_generated(second.session_id)
    assert first.session_id != second.session_id


# --- decided when the response starts, after inner layers corrected the request -------------


def test_asgi_secure_follows_the_scheme_an_inner_proxy_headers_layer_corrected() -> None:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(
        ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1"),  # type: ignore[arg-type]
        **COOKIE,
    )
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {
        "type": "http",
        "scheme": "http",  # TLS ended at the proxy in front
        "client": ("127.0.0.1", 5000),
        "path": "/",
        "query_string": b"",
        "headers": [(HEADER, b"chat-1"), (b"x-forwarded-proto", b"https")],
    }
    asyncio.run(middleware(scope, receive, send))
    (set_cookie,) = [value for name, value in sent[0]["headers"] if name == b"set-cookie"]
    assert set_cookie.endswith(b"; Secure")


def test_wsgi_secure_follows_the_scheme_an_inner_proxy_fix_corrected() -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b""]

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(HTTP_MIRASCOPE_SESSION_ID="chat-1", HTTP_X_FORWARDED_PROTO="https")
    answer: list[list[tuple[str, str]]] = []
    middleware = WSGISessionMiddleware(ProxyFix(app, x_proto=1), **COOKIE)

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        answer.append(headers)

    middleware(environ, start_response)
    (set_cookie,) = [value for name, value in answer[0] if name == "Set-Cookie"]
    assert set_cookie.endswith("; Secure")


def client_attributes(request: Any) -> dict[str, Jsonable]:
    client = request.get("client") or (request.get("REMOTE_ADDR"),)
    return {"client": client[0]}


def test_asgi_says_once_that_an_inner_layer_changed_the_client_after_the_attributes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(require_session().attributes)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(
        ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1"),  # type: ignore[arg-type]
        attributes=client_attributes,
    )

    async def send(message: Message) -> None:
        pass

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    for forwarded in (b"203.0.113.7", b"203.0.113.8", None):
        headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded)]
        scope: Scope = {
            "type": "http",
            "scheme": "http",
            "client": ("127.0.0.1", 5000),
            "path": "/",
            "query_string": b"",
            "headers": headers,
        }
        asyncio.run(middleware(scope, receive, send))
    assert seen == [{"client": "127.0.0.1"}] * 3  # what the callable could see, as documented
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Move that layer outside" in warnings[0].getMessage()


def ignore_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def test_wsgi_says_once_that_an_inner_proxy_fix_changed_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b""]

    middleware = WSGISessionMiddleware(ProxyFix(app, x_for=1), attributes=client_attributes)
    for forwarded in ("203.0.113.7", "203.0.113.8", None):
        environ: dict[str, Any] = {}
        setup_testing_defaults(environ)
        environ["REMOTE_ADDR"] = "127.0.0.1"
        if forwarded is not None:
            environ["HTTP_X_FORWARDED_FOR"] = forwarded
        list(middleware(environ, ignore_response))
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ProxyFix" in warnings[0].getMessage()
