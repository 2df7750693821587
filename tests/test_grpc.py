"""`ops_session.grpc` on real gRPC servers and channels on 127.0.0.1 (sync and `grpc.aio`)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry.baggage import set_baggage
from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    client_interceptor,
    grpcext,
    server_interceptor,
)
from opentelemetry.trace import SpanKind

from ops_session import current_session, is_valid_session_id, session, set_session_header_name
from ops_session._grpc_client import _target_host
from ops_session.grpc import (
    METADATA_KEY,
    AsyncSessionServerInterceptor,
    SessionClientInterceptor,
    SessionServerInterceptor,
    async_client_interceptors,
)

from .conftest import Tracing
from .support import grpc_service as service
from .support.grpc_service import aio_server, sync_server

CONCURRENT_CALLS = 50
TIMEOUT = 10
HOSTILE_METADATA = ["a b", "a,b", "<script>alert(1)</script>", "a" * 129, "a;b", "x" * 8000]


def sync_channel(target: str, *interceptors: Any) -> grpc.Channel:
    return grpc.intercept_channel(grpc.insecure_channel(target), *interceptors)


def instrumented_channel(target: str, tracing: Tracing) -> grpc.Channel:
    """A channel under OpenTelemetry's client interceptor, as `GrpcInstrumentorClient` makes."""
    interceptor = client_interceptor(tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]
    channel = grpcext.intercept_channel(grpc.insecure_channel(target), interceptor)  # type: ignore[no-untyped-call]
    return channel  # type: ignore[no-any-return]


def ids(responses: Iterable[bytes]) -> list[str]:
    return [response.decode() for response in responses]


@pytest.fixture
def sync_target() -> Iterator[str]:
    with sync_server([SessionServerInterceptor()]) as (target, _):
        yield target


def test_fifty_concurrent_calls_each_see_their_own_session(sync_target: str) -> None:
    channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
    call = service.unary_unary(channel, service.UNARY)
    barrier = threading.Barrier(CONCURRENT_CALLS)

    def one_call(number: int) -> tuple[str, str]:
        with session(id=f"chat-{number}"):
            barrier.wait(TIMEOUT)
            return f"chat-{number}", call(b"0.05", timeout=TIMEOUT).decode()

    with ThreadPoolExecutor(CONCURRENT_CALLS) as callers:
        results = list(callers.map(one_call, range(CONCURRENT_CALLS)))
    channel.close()
    assert [seen for _, seen in results] == [sent for sent, _ in results]


def test_every_kind_of_method_runs_in_the_call_session(sync_target: str) -> None:
    channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
    with session(id="chat-42"):
        server_stream = ids(
            service.unary_stream(channel, service.SERVER_STREAM)(b"", timeout=TIMEOUT)
        )
        client_stream = service.stream_unary(channel, service.CLIENT_STREAM)(
            iter([b"1", b"2"]), timeout=TIMEOUT
        )
        bidi = ids(
            service.stream_stream(channel, service.BIDI_STREAM)(iter([b"1", b"2"]), timeout=TIMEOUT)
        )
    channel.close()
    assert server_stream == ["chat-42"] * service.STREAM_LENGTH
    assert client_stream == b"chat-42,chat-42"
    assert bidi == ["chat-42", "chat-42"]


def test_no_session_leaks_between_calls_on_a_reused_thread() -> None:
    with sync_server([SessionServerInterceptor()], workers=1) as (target, executor):
        channel = sync_channel(target, SessionClientInterceptor(target=target))
        call = service.unary_unary(channel, service.UNARY)
        stream = service.unary_stream(channel, service.SERVER_STREAM)
        with session(id="chat-1"):
            first = call(b"", timeout=TIMEOUT).decode()
            first_stream = ids(stream(b"", timeout=TIMEOUT))
        without = [call(b"", timeout=TIMEOUT).decode() for _ in range(3)]
        # The pool's one thread, between calls, has no session of its own.
        between = executor.submit(current_session).result(TIMEOUT)
        channel.close()
    assert first == "chat-1" and first_stream == ["chat-1"] * service.STREAM_LENGTH
    assert len(set(without)) == 3 and "chat-1" not in without
    assert all(is_valid_session_id(value) for value in without)
    assert between is None


def test_a_call_without_session_metadata_gets_a_new_session(sync_target: str) -> None:
    channel = grpc.insecure_channel(sync_target)
    seen = service.unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT).decode()
    channel.close()
    assert is_valid_session_id(seen) and seen != "-"


@pytest.mark.parametrize("value", HOSTILE_METADATA, ids=lambda value: value[:12])
def test_hostile_metadata_is_replaced_never_used(sync_target: str, value: str) -> None:
    channel = grpc.insecure_channel(sync_target)
    seen = service.unary_unary(channel, service.UNARY)(
        b"", metadata=((METADATA_KEY, value),), timeout=TIMEOUT
    ).decode()
    channel.close()
    assert seen != value and is_valid_session_id(seen)


def test_metadata_the_caller_set_is_kept(sync_target: str) -> None:
    channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
    with session(id="chat-1"):
        seen = service.unary_unary(channel, service.UNARY)(
            b"", metadata=((METADATA_KEY, "chat-2"),), timeout=TIMEOUT
        )
    channel.close()
    assert seen == b"chat-2"


def test_the_process_header_name_names_the_metadata_both_ways(sync_target: str) -> None:
    set_session_header_name("X-Conversation-Id")
    try:
        channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
        call = service.unary_unary(channel, service.UNARY)
        with session(id="chat-7"):
            sent_under_our_name = call(b"", timeout=TIMEOUT).decode()
        under_the_default = call(
            b"", metadata=((METADATA_KEY, "chat-8"),), timeout=TIMEOUT
        ).decode()
        under_the_name = call(
            b"", metadata=(("x-conversation-id", "chat-9"),), timeout=TIMEOUT
        ).decode()
        channel.close()
    finally:
        set_session_header_name(None)
    assert sent_under_our_name == "chat-7"
    assert under_the_default != "chat-8" and under_the_name == "chat-9"


def test_an_invalid_process_header_name_sends_and_reads_nothing(
    sync_target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "not a header")
    channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
    call = service.unary_unary(channel, service.UNARY)
    with session(id="chat-7"):
        answered = call(b"", timeout=TIMEOUT).decode()
    channel.close()
    assert answered != "chat-7"


def test_the_allow_list_decides_whether_the_id_is_sent(
    sync_target: str, process_hosts: Callable[[Iterable[str] | None], None]
) -> None:
    channel = sync_channel(sync_target, SessionClientInterceptor(target=sync_target))
    call = service.unary_unary(channel, service.UNARY)
    process_hosts(["*.internal"])
    with session(id="chat-1"):
        refused = call(b"", timeout=TIMEOUT).decode()
    process_hosts(["127.0.0.1"])
    with session(id="chat-1"):
        allowed = call(b"", timeout=TIMEOUT).decode()
    channel.close()
    assert refused != "chat-1" and allowed == "chat-1"


@pytest.mark.parametrize(
    ("target", "host"),
    [
        pytest.param("orders.internal:50051", "orders.internal", id="host-port"),
        pytest.param("orders.internal", "orders.internal", id="host"),
        pytest.param("dns:///orders.internal:443", "orders.internal", id="dns"),
        pytest.param("dns://8.8.8.8/orders.internal:443", "orders.internal", id="dns-authority"),
        pytest.param("ipv4:10.0.0.7:50051,10.0.0.8:50051", "10.0.0.7", id="ipv4-list"),
        pytest.param("ipv6:[::1]:50051", "::1", id="ipv6"),
        pytest.param("[::1]:50051", "::1", id="bracketed"),
        pytest.param("unix:/run/orders.sock", None, id="unix"),
        pytest.param("unix-abstract:orders", None, id="unix-abstract"),
    ],
)
def test_channel_targets_name_their_host(target: str, host: str | None) -> None:
    assert _target_host(target) == host


def test_missing_grpcio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc.aio", None)
    monkeypatch.delitem(sys.modules, "ops_session.grpc")
    with pytest.raises(ImportError, match=r"install 'ops-session\[grpc\]'"):
        importlib.import_module("ops_session.grpc")


def test_misuse_raises_errors_that_say_what_to_do() -> None:
    with pytest.raises(TypeError, match="channel's target string"):
        SessionClientInterceptor(target="")
    with pytest.raises(TypeError, match="baggage must be a bool"):
        SessionServerInterceptor(baggage="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="baggage must be a bool"):
        AsyncSessionServerInterceptor(baggage=1)  # type: ignore[arg-type]


def test_an_unknown_method_still_answers_unimplemented(sync_target: str) -> None:
    channel = grpc.insecure_channel(sync_target)
    with pytest.raises(grpc.RpcError) as raised:
        service.unary_unary(channel, f"/{service.SERVICE}/Missing")(b"", timeout=TIMEOUT)
    channel.close()
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_works_beside_opentelemetry_instrumentation(tracing: Tracing) -> None:
    interceptors = [
        server_interceptor(tracer_provider=tracing.provider),  # type: ignore[no-untyped-call]
        SessionServerInterceptor(),
    ]
    with sync_server(interceptors) as (target, _):
        channel = grpc.intercept_channel(
            instrumented_channel(target, tracing), SessionClientInterceptor(target=target)
        )
        with session(id="chat-42"):
            seen = service.unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT)
            streamed = ids(
                service.unary_stream(channel, service.SERVER_STREAM)(b"", timeout=TIMEOUT)
            )
        channel.close()
    assert seen == b"chat-42" and streamed == ["chat-42"] * service.STREAM_LENGTH
    spans = tracing.exporter.get_finished_spans()
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 2 and len(spans) == 4
    assert all((span.attributes or {}).get("session.id") == "chat-42" for span in spans)


def test_baggage_alone_carries_the_session_through_opentelemetry(tracing: Tracing) -> None:
    """No ops-session client interceptor: OpenTelemetry's sends the baggage, ours reads it."""
    interceptors = [
        server_interceptor(tracer_provider=tracing.provider),  # type: ignore[no-untyped-call]
        SessionServerInterceptor(baggage=True),
    ]
    with sync_server(interceptors) as (target, _):
        channel = instrumented_channel(target, tracing)
        token = attach(set_baggage("session.id", "chat-42"))
        try:
            seen = service.unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT)
        finally:
            detach(token)
        channel.close()
    assert seen == b"chat-42"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param([("baggage", "session.id=chat-7")], "chat-7", id="baggage"),
        pytest.param(
            [(METADATA_KEY, "chat-1"), ("baggage", "session.id=chat-7")], "chat-1", id="header-wins"
        ),
        pytest.param(
            [(METADATA_KEY, "a b"), ("baggage", "session.id=chat-7")], None, id="bad-header"
        ),
        pytest.param([("baggage", "session.id=%3Cscript%3E")], None, id="hostile-baggage"),
        pytest.param([("baggage", ",;=," * 2000)], None, id="garbage"),
        pytest.param(
            [("baggage", "session.id=chat-7," + "k=v," * 2100)], None, id="over-8192-bytes"
        ),
        pytest.param(
            [("baggage", "k=v," * 180 + "session.id=chat-7")], None, id="past-180-entries"
        ),
    ],
)
def test_server_reads_baggage_only_without_a_valid_header(
    metadata: list[tuple[str, str | bytes]], expected: str | None
) -> None:
    with sync_server([SessionServerInterceptor(baggage=True)]) as (target, _):
        channel = grpc.insecure_channel(target)
        seen = service.unary_unary(channel, service.UNARY)(
            b"", metadata=tuple(metadata), timeout=TIMEOUT
        )
        channel.close()
    if expected is None:
        assert is_valid_session_id(seen.decode()) and b"script" not in seen and seen != b"chat-7"
    else:
        assert seen.decode() == expected


def test_server_ignores_baggage_unless_asked(sync_target: str) -> None:
    channel = grpc.insecure_channel(sync_target)
    seen = service.unary_unary(channel, service.UNARY)(
        b"", metadata=(("baggage", "session.id=chat-7"),), timeout=TIMEOUT
    )
    channel.close()
    assert seen != b"chat-7"


@pytest.mark.anyio
async def test_aio_fifty_concurrent_calls_each_see_their_own_session() -> None:
    async with aio_server([AsyncSessionServerInterceptor()]) as (target, _):
        channel = grpc.aio.insecure_channel(
            target, interceptors=async_client_interceptors(target=target)
        )
        call = service.aio_unary_unary(channel, service.UNARY)

        async def one_call(number: int) -> tuple[str, str]:
            with session(id=f"chat-{number}"):
                return f"chat-{number}", (await call(b"0.05", timeout=TIMEOUT)).decode()

        results = await asyncio.gather(*(one_call(number) for number in range(CONCURRENT_CALLS)))
        await channel.close()
    assert [seen for _, seen in results] == [sent for sent, _ in results]


async def _requests() -> AsyncIterator[bytes]:
    for chunk in (b"1", b"2"):
        yield chunk


@pytest.mark.anyio
async def test_aio_every_kind_of_method_runs_in_the_call_session() -> None:
    async with aio_server([AsyncSessionServerInterceptor()]) as (target, executor):
        channel = grpc.aio.insecure_channel(
            target, interceptors=async_client_interceptors(target=target)
        )
        with session(id="chat-42"):
            unary = await service.aio_unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT)
            streamed = [
                r async for r in service.aio_unary_stream(channel, service.SERVER_STREAM)(b"")
            ]
            written = [
                r async for r in service.aio_unary_stream(channel, service.WRITER_STREAM)(b"")
            ]
            client_stream = await service.aio_stream_unary(channel, service.CLIENT_STREAM)(
                _requests()
            )
            bidi = [
                r
                async for r in service.aio_stream_stream(channel, service.BIDI_STREAM)(_requests())
            ]
            sync_unary = await service.aio_unary_unary(channel, f"/{service.SERVICE}/SyncUnary")(
                b""
            )
            sync_stream = [
                r
                async for r in service.aio_unary_stream(
                    channel, f"/{service.SERVICE}/SyncServerStream"
                )(b"")
            ]
        without = await service.aio_unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT)
        between = executor.submit(current_session).result(TIMEOUT)
        await channel.close()
    assert unary == b"chat-42" and client_stream == b"chat-42,chat-42"
    assert ids(streamed) == ids(written) == ["chat-42"] * service.STREAM_LENGTH
    assert ids(bidi) == ["chat-42", "chat-42"]
    assert sync_unary == b"chat-42" and ids(sync_stream) == ["chat-42"] * service.STREAM_LENGTH
    assert without != b"chat-42" and is_valid_session_id(without.decode())
    assert between is None


@pytest.mark.anyio
async def test_aio_unknown_method_still_answers_unimplemented() -> None:
    async with aio_server([AsyncSessionServerInterceptor()]) as (target, _):
        channel = grpc.aio.insecure_channel(target)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await service.aio_unary_unary(channel, f"/{service.SERVICE}/Missing")(b"")
        await channel.close()
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.anyio
async def test_aio_client_keeps_to_the_allow_list_and_the_caller_metadata(
    process_hosts: Callable[[Iterable[str] | None], None],
) -> None:
    async with aio_server([AsyncSessionServerInterceptor()]) as (target, _):
        channel = grpc.aio.insecure_channel(
            target, interceptors=async_client_interceptors(target=target)
        )
        call = service.aio_unary_unary(channel, service.UNARY)
        with session(id="chat-1"):
            kept = await call(b"", metadata=grpc.aio.Metadata((METADATA_KEY, "chat-2")))
            process_hosts(["*.internal"])
            refused = await call(b"")
        await channel.close()
    assert kept == b"chat-2" and refused != b"chat-1"


@pytest.mark.anyio
async def test_aio_works_beside_opentelemetry_instrumentation(tracing: Tracing) -> None:
    interceptors = [
        aio_server_interceptor(tracer_provider=tracing.provider),  # type: ignore[no-untyped-call]
        AsyncSessionServerInterceptor(baggage=True),
    ]
    async with aio_server(interceptors) as (target, _):
        channel = grpc.aio.insecure_channel(
            target,
            interceptors=aio_client_interceptors(  # type: ignore[no-untyped-call]
                tracer_provider=tracing.provider
            ),
        )
        token = attach(set_baggage("session.id", "chat-42"))
        try:
            seen = await service.aio_unary_unary(channel, service.UNARY)(b"", timeout=TIMEOUT)
        finally:
            detach(token)
        await channel.close()
    assert seen == b"chat-42"
    servers = [s for s in tracing.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [(span.attributes or {}).get("session.id") for span in servers] == ["chat-42"]
