"""One option set, one meaning, in every entry point: keywords, install(), Django, variables."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from fastapi import FastAPI
from flask import Flask

from ops_session import SessionMiddleware, SessionOptions, WSGISessionMiddleware, install
from ops_session._environ import ENVIRONMENT_OPTIONS, middleware_options
from ops_session._options import OPTIONS, OUTGOING_VARIABLES
from ops_session.asgi import Receive, Scope, Send

from .support.django_settings import configure_django

MIDDLEWARE = "_ops_session_middleware"
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src" / "ops_session"

# A value other than the default for every option, valid in every entry point.
EVERY_OPTION: dict[str, Any] = {
    "header_name": "X-Conversation-Id",
    "generator": "tests.test_options.new_id",
    "validator": "tests.test_options.is_ours",
    "on_invalid": "reject",
    "attributes": {"team": "chat"},
    "update_request_header": False,
    "also_accept": ("X-Mirascope-Session-Id",),
    "query_param": "session_id",
    "cookie": "sid",
    "set_cookie": True,
    "cookie_max_age": 600,
    "baggage": True,
}


def new_id() -> str:
    return "ours-1"


def is_ours(value: str) -> bool:
    return value.startswith("ours-")


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    pass  # pragma: no cover (never called)


def wsgi_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    return []  # pragma: no cover (never called)


def django_policy(options: object) -> Any:
    from ops_session.django import policy_from_settings

    configure_django()
    with override_settings(OPS_SESSION=options):
        return policy_from_settings()


def test_the_typed_keywords_and_the_table_name_the_same_options_in_one_order() -> None:
    assert list(get_type_hints(SessionOptions)) == list(OPTIONS) == list(EVERY_OPTION)


ENTRY_POINTS: list[Any] = [
    pytest.param(lambda options: SessionMiddleware(asgi_app, **options).policy, id="asgi"),
    pytest.param(lambda options: WSGISessionMiddleware(wsgi_app, **options).policy, id="wsgi"),
    pytest.param(
        lambda options: install(FastAPI(), **options).__dict__[MIDDLEWARE].policy,
        id="install-asgi",
    ),
    pytest.param(
        lambda options: install(Flask(__name__), **options).__dict__[MIDDLEWARE].policy,
        id="install-wsgi",
    ),
    pytest.param(django_policy, id="django"),
    pytest.param(
        lambda options: (
            SessionMiddleware(
                asgi_app,
                **middleware_options(
                    {
                        option.variable: ",".join(value) if isinstance(value, tuple) else str(value)
                        for option, value in zip(OPTIONS.values(), options.values(), strict=True)
                        if option.name != "attributes"
                    }
                    | {"OPS_SESSION_ATTRIBUTES": '{"team": "chat"}'}
                ),
            ).policy
        ),
        id="environment",
    ),
]


@pytest.mark.parametrize("build", ENTRY_POINTS)
def test_every_entry_point_takes_every_option_with_one_meaning(
    build: Callable[[dict[str, Any]], Any],
) -> None:
    policy = build(dict(EVERY_OPTION))
    assert policy.header_name == "X-Conversation-Id"
    assert policy.generator is new_id and policy.validator is is_ours
    assert policy.reject_invalid
    decision = policy.session_for("ours-7", {})
    assert decision is not None
    context, replaced = decision
    assert (context.id, replaced, context.attributes) == ("ours-7", False, {"team": "chat"})
    assert policy.update_request_header is False
    assert policy.also_accept == ("X-Mirascope-Session-Id",)
    assert (policy.query_param, policy.cookie, policy.set_cookie) == ("session_id", "sid", True)
    assert policy.cookie_max_age == 600


# The environment's entry point reads OPS_SESSION_HEADER_NAME as its option already.
@pytest.mark.parametrize("build", [param for param in ENTRY_POINTS if param.id != "environment"])
def test_every_entry_point_defaults_to_the_process_header_name(
    build: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name every outgoing carrier sends: two services configured alike keep the session."""
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "X-Conversation-Id")
    assert build({}).header_name == "X-Conversation-Id"
    assert build({"header_name": "X-Other-Id"}).header_name == "X-Other-Id"


TYPO = r"has no option 'on_invalide': did you mean 'on_invalid'\? The options are header_name, "


MISSPELT: dict[str, Any] = {"on_invalide": "reject"}  # a dict: type checkers flag it in a call


@pytest.mark.parametrize(
    ("build", "where"),
    [
        pytest.param(
            lambda: SessionMiddleware(asgi_app, **MISSPELT), "SessionMiddleware()", id="asgi"
        ),
        pytest.param(
            lambda: WSGISessionMiddleware(wsgi_app, **MISSPELT),
            "WSGISessionMiddleware()",
            id="wsgi",
        ),
        pytest.param(lambda: install(FastAPI(), **MISSPELT), "install()", id="install"),
    ],
)
def test_a_misspelt_keyword_says_which_option_was_meant(
    build: Callable[[], object], where: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(where) + " " + TYPO):
        build()


def test_django_says_the_same_about_a_misspelt_key() -> None:
    with pytest.raises(ImproperlyConfigured, match="OPS_SESSION " + TYPO):
        django_policy({"on_invalide": "reject"})


def test_a_callable_option_may_be_a_dotted_path_everywhere() -> None:
    policy = SessionMiddleware(
        asgi_app, generator="tests.test_options.new_id", validator="tests.test_options.is_ours"
    ).policy
    assert policy.generator is new_id
    with pytest.raises(
        ValueError, match="generator must be a callable or its dotted path: cannot import"
    ):
        SessionMiddleware(asgi_app, generator="tests.test_options.missing")
    assert middleware_options({"OPS_SESSION_ATTRIBUTES": "tests.test_options.EVERY_OPTION"}) == {
        "attributes": EVERY_OPTION
    }


def test_every_variable_the_package_reads_is_named_in_one_place() -> None:
    named = set(ENVIRONMENT_OPTIONS) | set(OUTGOING_VARIABLES)
    read = {
        match
        for path in SOURCES.glob("*.py")
        for match in re.findall(r"\bOPS_SESSION_[A-Z_]+[A-Z]\b", path.read_text())
    } - {"OPS_SESSION_"}
    assert read <= named, f"name these in _options.py: {sorted(read - named)}"


def test_the_docs_list_every_option_and_variable() -> None:
    """docs/options.md has a row per option, naming its variable; docs/zero-code.md lists all."""
    page = (ROOT / "docs" / "options.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \|(.*)$", page, flags=re.MULTILINE))
    assert set(OPTIONS) <= set(rows)
    for variable, (option, _) in ENVIRONMENT_OPTIONS.items():
        assert f"`{variable}`" in rows[option], f"docs/options.md: {option} without {variable}"
    zero_code = (ROOT / "docs" / "zero-code.md").read_text()
    variables = set(re.findall(r"^\| `(OPS_SESSION_[A-Z_]+)` \|", zero_code, flags=re.MULTILINE))
    assert variables == set(ENVIRONMENT_OPTIONS) | set(OUTGOING_VARIABLES)
