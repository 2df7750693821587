"""The `ops_session` propagator: where it writes the id, which header, and that it never raises.

Real clients and OpenTelemetry's real instrumentations talk to echo servers on 127.0.0.1, .2 and
.3, which stand for three hosts; rules about other hosts are tested by matching names.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import opentelemetry.propagate
import pytest
import requests
from opentelemetry.context import Context
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter, default_setter
from requests.structures import CaseInsensitiveDict

import ops_session.requests
from ops_session import SESSION_HEADER_NAME, session
from ops_session._propagator import carrier_kind
from ops_session._rules import OUTGOING_CARRIERS_ENV, OUTGOING_HOSTS_ENV
from ops_session._variables import forget_variables
from ops_session.otel import SessionPropagator, extracted_session_id

from .support.echo_server import NO_HEADER, echo_server
from .support.outgoing import ALLOWED, SESSION_ID, allow_list_cases

SetHosts = Callable[[Iterable[str] | None], None]
ROOT = Path(__file__).resolve().parent.parent


class ListSetter(Setter[list[tuple[str, str]]]):
    """How Kafka's and gRPC's instrumentations write: a list of (key, value) pairs."""

    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key, value))


def inject_from(
    module: str,
    carrier: Any,
    setter: Setter[Any] = default_setter,
    context: Context | None = None,
) -> None:
    """Inject through a composite propagator, called from code whose module is `module`.

    That is how an instrumentation (`opentelemetry.instrumentation.celery`) calls it, and what
    the propagator reads to know the carrier's kind.
    """
    namespace: dict[str, Any] = {
        "__name__": module,
        "propagator": CompositePropagator([SessionPropagator()]),
    }
    source = (
        "def call(carrier, setter, context):\n    propagator.inject(carrier, context, setter)\n"
    )
    exec(compile(source, f"<{module}>", "exec"), namespace)
    namespace["call"](carrier, setter, context)


@pytest.fixture
def global_propagator() -> Iterator[None]:
    """What `OTEL_PROPAGATORS=ops_session` configures, for this test only."""
    before = opentelemetry.propagate.get_global_textmap()
    opentelemetry.propagate.set_global_textmap(CompositePropagator([SessionPropagator()]))
    try:
        yield
    finally:
        opentelemetry.propagate.set_global_textmap(before)


def test_injects_into_http_headers_whose_host_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    propagator = SessionPropagator()
    carrier: dict[str, str] = {"host": "orders.internal:8080"}
    propagator.inject(carrier)
    assert carrier == {"host": "orders.internal:8080"}, "outside a session nothing is sent"
    with session(id="pr-1"):
        propagator.inject(carrier)
        third_party = {"host": "api.openai.com"}
        propagator.inject(third_party)
    assert carrier == {"host": "orders.internal:8080", SESSION_HEADER_NAME: "pr-1"}
    assert third_party == {"host": "api.openai.com"}, "the default rule is your own hosts"
    assert propagator.fields == {SESSION_HEADER_NAME}


@pytest.mark.parametrize(
    ("carrier", "sent"),
    [
        pytest.param({"host": "api.internal"}, True, id="allowed"),
        pytest.param({"Host": "api.internal:8443"}, True, id="allowed-with-port"),
        pytest.param({"host": "[::1]:8000"}, True, id="ipv6-with-port"),
        pytest.param({"host": "llm.example.com"}, False, id="other-host"),
        pytest.param({}, False, id="no-host"),
    ],
)
def test_keeps_to_the_process_rule(
    carrier: dict[str, str], sent: bool, process_hosts: SetHosts
) -> None:
    process_hosts(["api.internal", "::1"])
    with session(id="zero-4"):
        SessionPropagator().inject(carrier)
    assert (carrier.get(SESSION_HEADER_NAME) == "zero-4") is sent


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        pytest.param({SESSION_HEADER_NAME: "in-1"}, "in-1", id="canonical"),
        pytest.param({"mirascope-session-id": "in-2"}, "in-2", id="lower"),
        pytest.param({"mirascope-session-id": "a b"}, None, id="invalid"),
        pytest.param({}, None, id="missing"),
    ],
)
def test_extracts_a_valid_id_and_forwards_it(carrier: dict[str, str], expected: str | None) -> None:
    propagator = SessionPropagator()
    context = propagator.extract(carrier)
    assert isinstance(context, Context)
    assert extracted_session_id(context) == expected
    forwarded = {"host": "orders.internal"}
    propagator.inject(forwarded, context)
    assert forwarded.get(SESSION_HEADER_NAME) == expected


@pytest.mark.parametrize(
    "name",
    [
        "Mirascope-Session-Id",
        "mirascope-session-id",
        "MIRASCOPE-SESSION-ID",
        "mIrAsCoPe-SeSsIoN-iD",
    ],
)
def test_extracts_the_header_in_any_case(name: str) -> None:
    context = SessionPropagator().extract({"traceparent": "-", name: "any-case-1"})
    assert extracted_session_id(context) == "any-case-1"


@pytest.mark.parametrize(
    "name", ["Mirascope-Session-Id", "mirascope-session-id", "MIRASCOPE-SESSION-ID"]
)
def test_keeps_a_header_the_caller_set_with_another_id(name: str) -> None:
    carrier = {"host": "api.openai.com", name: "caller-1"}
    expected = dict(carrier)
    with session(id="current-1"):
        SessionPropagator().inject(carrier)
    assert carrier == expected


def test_removes_its_own_id_copied_to_a_host_the_rule_refuses() -> None:
    """Issue 27, point 2: a redirect's hop carries our header along; inject must not keep it."""
    with session(id="ours-1"):
        for name in ("Mirascope-Session-Id", "mirascope-session-id"):
            hop = {"host": "objects.example.com", name: "ours-1", "accept": "*/*"}
            SessionPropagator().inject(hop)
            assert hop == {"host": "objects.example.com", "accept": "*/*"}
        allowed = {"host": "files.internal", SESSION_HEADER_NAME: "ours-1"}
        SessionPropagator().inject(allowed)
        assert allowed == {"host": "files.internal", SESSION_HEADER_NAME: "ours-1"}
        hostless = {SESSION_HEADER_NAME: "ours-1"}  # nothing to judge: a hook put it there
        inject_from("opentelemetry.instrumentation.requests", hostless)
        assert hostless == {SESSION_HEADER_NAME: "ours-1"}


@pytest.mark.usefixtures("global_propagator")
@pytest.mark.parametrize("client_class", [httpx.Client, httpx.AsyncClient], ids=["sync", "async"])
def test_opentelemetrys_httpx_instrumentation_keeps_the_id_from_a_redirects_other_host(
    loopback_servers: dict[str, str],
    process_hosts: SetHosts,
    client_class: type[httpx.Client] | type[httpx.AsyncClient],
) -> None:
    """Issue 27, point 2, as reported: a process rule, OpenTelemetry's httpx instrumentation and
    the propagator, no ops-session hook on the client; redirects copy headers to the next hop."""
    process_hosts(ALLOWED)
    cases = allow_list_cases(loopback_servers)

    async def received() -> list[str]:
        client = client_class(follow_redirects=True, trust_env=False)
        HTTPXClientInstrumentor().instrument_client(client)
        try:
            with session(id=SESSION_ID):
                texts = []
                for url, headers, _ in cases:
                    if isinstance(client, httpx.AsyncClient):
                        texts.append((await client.get(url, headers=headers)).text)
                    else:
                        texts.append(client.get(url, headers=headers).text)
                return texts
        finally:
            HTTPXClientInstrumentor().uninstrument_client(client)
            if isinstance(client, httpx.AsyncClient):
                await client.aclose()
            else:
                client.close()

    assert asyncio.run(received()) == [expected for _, _, expected in cases]


@pytest.mark.usefixtures("global_propagator")
def test_a_hooked_requests_session_keeps_its_header_under_the_instrumentation(
    loopback_servers: dict[str, str],
) -> None:
    """requests' headers show no host: the hook sends, and the propagator leaves it alone."""
    cases = allow_list_cases(loopback_servers)
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument()
    try:
        with requests.Session() as http, session(id=SESSION_ID):
            http.trust_env = False
            ops_session.requests.send_session(http, hosts=ALLOWED)
            received = [http.get(url, headers=headers).text for url, headers, _ in cases]
    finally:
        instrumentor.uninstrument()
    assert received == [expected for _, _, expected in cases]


@pytest.mark.parametrize(
    ("module", "kind"),
    [
        pytest.param("opentelemetry.instrumentation.celery", "celery", id="celery"),
        pytest.param("opentelemetry.instrumentation.kafka", "kafka", id="kafka-python"),
        pytest.param("opentelemetry.instrumentation.confluent_kafka", "kafka", id="confluent"),
        pytest.param("opentelemetry.instrumentation.aiokafka", "kafka", id="aiokafka"),
        pytest.param("opentelemetry.instrumentation.pika.utils", "rabbitmq", id="pika"),
        pytest.param("opentelemetry.instrumentation.aio_pika.span_builder", "rabbitmq", id="aio"),
        pytest.param("opentelemetry.instrumentation.grpc._client", "grpc", id="grpc"),
        pytest.param("opentelemetry.instrumentation.mcp.instrumentation", "mcp", id="mcp"),
        pytest.param("opentelemetry.instrumentation.boto3sqs", "boto3sqs", id="other-library"),
        pytest.param("opentelemetry.instrumentation.requests", "http", id="requests"),
        pytest.param("opentelemetry.instrumentation.urllib3", "http", id="urllib3"),
        pytest.param("opentelemetry.instrumentation.aiohttp_client", "http", id="aiohttp"),
        pytest.param("ray.util.tracing.tracing_helper", "ray", id="ray"),
        pytest.param("temporalio.contrib.opentelemetry", "temporal", id="temporal"),
        pytest.param("myapp.jobs", "other", id="your-own-code"),
        pytest.param("opentelemetry.instrumentation", "other", id="bare-package"),
    ],
)
def test_names_the_carrier_by_the_library_that_calls_it(module: str, kind: str) -> None:
    seen: list[str] = []
    namespace: dict[str, Any] = {
        "__name__": module,
        "inject": lambda: seen.append(carrier_kind(sys._getframe(1))),
    }
    exec(compile("def call():\n    inject()\n", f"<{module}>", "exec"), namespace)
    namespace["call"]()
    assert seen == [kind]
    assert carrier_kind(None) == "other"


@pytest.mark.parametrize(
    ("module", "sent"),
    [
        pytest.param("opentelemetry.instrumentation.celery", True, id="celery"),
        pytest.param("opentelemetry.instrumentation.kafka", True, id="kafka"),
        pytest.param("ray.util.tracing.tracing_helper", True, id="ray"),
        pytest.param("opentelemetry.instrumentation.grpc._client", False, id="grpc"),
        pytest.param("opentelemetry.instrumentation.mcp", False, id="mcp"),
        pytest.param("myapp.jobs", False, id="other"),
    ],
)
def test_carriers_without_a_host_follow_the_carrier_policy(
    monkeypatch: pytest.MonkeyPatch, module: str, sent: bool
) -> None:
    """Issue 27, point 3: hostless carriers are no longer dropped wholesale under a rule."""
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "api.internal")  # a process rule is set
    monkeypatch.delenv(OUTGOING_CARRIERS_ENV, raising=False)
    pairs: list[tuple[str, str]] = []
    mapping: dict[str, str] = {"task": "summarize", "host": "worker-7"}  # no HTTP Host here
    with session(id="q-1"):
        inject_from(module, pairs, ListSetter())
        inject_from(module, mapping)
    assert pairs == ([(SESSION_HEADER_NAME, "q-1")] if sent else [])
    assert (mapping.get(SESSION_HEADER_NAME) == "q-1") is sent
    monkeypatch.setenv(OUTGOING_CARRIERS_ENV, "*")
    forget_variables()  # read once per process: read the new value
    with session(id="q-2"):
        inject_from(module, pairs, ListSetter())
    assert pairs[-1] == (SESSION_HEADER_NAME, "q-2")


def test_opentelemetrys_celery_instrumentation_carries_the_id_under_a_rule() -> None:
    """Issue 27, point 3: a real Celery publish through `CeleryInstrumentor` and the propagator
    alone (no `propagate_sessions`), with a process rule that names no Celery host."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.celery_propagation"],
        cwd=ROOT,
        env={
            **os.environ,
            "OTEL_PROPAGATORS": "tracecontext,ops_session",
            OUTGOING_HOSTS_ENV: "api.internal",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"inside": "celery-otel-1", "outside": None}


def test_writes_and_reads_the_process_header_name(
    process_header_name: Callable[[str | None], None],
) -> None:
    """Issue 27, point 7: the propagator sends and reads the configured name."""
    process_header_name("X-Conversation-Id")
    propagator = SessionPropagator()
    carrier = {"host": "orders.internal"}
    with session(id="named-1"):
        propagator.inject(carrier)
    assert carrier == {"host": "orders.internal", "X-Conversation-Id": "named-1"}
    assert propagator.fields == {"X-Conversation-Id"}
    assert extracted_session_id(propagator.extract({"x-conversation-id": "named-2"})) == "named-2"
    assert extracted_session_id(propagator.extract({SESSION_HEADER_NAME: "named-3"})) is None


class RaisingMapping(Mapping[str, str]):
    def __getitem__(self, key: str) -> str:
        raise RuntimeError("a carrier that fails")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("a carrier that fails")

    def __len__(self) -> int:
        return 0


class RaisingGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        raise RuntimeError("a getter that fails")

    def keys(self, carrier: Any) -> list[str]:
        raise RuntimeError("a getter that fails")


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_never_raises_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 27, point 14: propagators must not throw into the instrumented request."""
    caplog.set_level(logging.DEBUG, logger="ops_session")
    propagator = SessionPropagator()
    non_str_keys: dict[Any, Any] = {1: "one", b"host": b"api.internal", ("a",): None}
    with session(id="safe-1"):
        inject_from("opentelemetry.instrumentation.httpx", non_str_keys)
        assert non_str_keys == {1: "one", b"host": b"api.internal", ("a",): None}
        for _ in range(3):
            propagator.inject(RaisingMapping())
        monkeypatch.setenv(OUTGOING_HOSTS_ENV, "https://api.internal")
        forget_variables()  # read once per process: read the new value
        for _ in range(3):
            bad_rule = {"host": "api.internal"}
            propagator.inject(bad_rule)
            assert bad_rule == {"host": "api.internal"}
        monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
        forget_variables()  # read once per process: read the new value
        propagator.inject(bad_rule)
        assert propagator.fields == {SESSION_HEADER_NAME}
    assert extracted_session_id(propagator.extract({SESSION_HEADER_NAME: "in"})) is None
    monkeypatch.delenv("OPS_SESSION_HEADER_NAME")
    forget_variables()  # read once per process: read the new value
    assert extracted_session_id(propagator.extract(non_str_keys)) is None
    assert extracted_session_id(propagator.extract({}, getter=RaisingGetter())) is None
    context = Context()
    assert propagator.extract({}, context, getter=RaisingGetter()) is context
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4, warnings
    assert "inject failed" in warnings[0] and "RuntimeError" in warnings[0]
    assert OUTGOING_HOSTS_ENV in warnings[1] and "nowhere" in warnings[1]
    assert "OPS_SESSION_HEADER_NAME" in warnings[2]
    assert "extract failed" in warnings[3]


def test_a_carrier_that_is_no_mapping_gets_nothing_under_an_http_rule() -> None:
    carrier: list[tuple[str, str]] = []
    with session(id="zero-5"):
        inject_from("opentelemetry.instrumentation.requests", carrier, ListSetter())
    assert carrier == []


@pytest.mark.parametrize(
    ("propagators", "expected"),
    [
        pytest.param("tracecontext,baggage,ops_session", "otel-prop-1", id="selected"),
        pytest.param("tracecontext,baggage", NO_HEADER, id="not-selected"),
    ],
)
def test_otel_propagators_env_makes_instrumented_clients_send_the_header(
    propagators: str, expected: str
) -> None:
    with echo_server() as url:
        completed = subprocess.run(
            [sys.executable, "-m", "tests.live.propagation_client", url],
            cwd=ROOT,
            env={**os.environ, "OTEL_PROPAGATORS": propagators},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert json.loads(completed.stdout) == {
        "httpx": expected,
        "httpx-async": expected,
        # requests' headers show no host: its hook sends the header (see the test above).
        "requests": NO_HEADER,
        "outside": NO_HEADER,
    }


def test_requests_headers_are_case_insensitive_dicts_without_a_host() -> None:
    carrier: CaseInsensitiveDict[str] = CaseInsensitiveDict({"Accept": "*/*"})
    with session(id="ci-1"):
        inject_from("opentelemetry.instrumentation.requests", carrier)
    assert dict(carrier) == {"Accept": "*/*"}


def test_reads_list_values_and_leaves_a_read_only_carrier_as_it_is() -> None:
    listed: dict[str, Any] = {"host": ["orders.internal"], "other": []}
    with session(id="list-1"):
        SessionPropagator().inject(listed)
        read_only = MappingProxyType({"host": "api.openai.com", SESSION_HEADER_NAME: "list-1"})
        SessionPropagator().inject(read_only)  # ours, refused, and nothing can remove it
    assert listed[SESSION_HEADER_NAME] == "list-1"
    assert dict(read_only) == {"host": "api.openai.com", SESSION_HEADER_NAME: "list-1"}


def test_a_caller_beyond_many_propagation_frames_is_other() -> None:
    seen: list[str] = []
    namespace: dict[str, Any] = {
        "__name__": "opentelemetry.propagators.nested",
        "inject": lambda: seen.append(carrier_kind(sys._getframe(1))),
    }
    source = "def call(depth):\n    return inject() if depth == 0 else call(depth - 1)\n"
    exec(compile(source, "<nested>", "exec"), namespace)
    namespace["call"](20)
    assert seen == ["other"]
