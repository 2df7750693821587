"""gRPC: each call's handler runs in the session its metadata carried.  [extra: grpc]

Server side, `SessionServerInterceptor` (`grpc.server`) and `AsyncSessionServerInterceptor`
(`grpc.aio.server`) wrap each method's handler, so the handler itself, and for response
streams every step of its iterator, runs in the call's session: a server interceptor's own
frame runs in another context than the handler (grpc#37881). Client side,
`SessionClientInterceptor` (`grpc.intercept_channel`) and `async_client_interceptors()`
(`grpc.aio` channels) send the caller's session in the `mirascope-session-id` metadata, to the
hosts the outgoing allow-list lets have it.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeAlias

try:
    import grpc
    import grpc.aio
except ImportError as error:
    raise ImportError("ops_session.grpc needs grpcio: install 'ops-session[grpc]'.") from error

from ._baggage import BAGGAGE_HEADER_NAME, baggage_session_id
from ._core import (
    SessionContext,
    activate,
    deactivate,
    is_valid_session_id,
    notify_request_started,
    request_listeners,
)
from ._grpc_client import (
    METADATA_KEY,
    SessionClientInterceptor,
    async_client_interceptors,
    metadata_key,
)

__all__ = [
    "METADATA_KEY",
    "AsyncSessionServerInterceptor",
    "SessionClientInterceptor",
    "SessionServerInterceptor",
    "async_client_interceptors",
]

_Behavior = Callable[..., Any]
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only
_END: Any = object()


def _incoming_session(metadata: Sequence[tuple[str, Any]] | None, baggage: bool) -> SessionContext:
    """The call's session: its valid metadata id, else a new one.

    With `baggage`, a call without session metadata continues the `session.id` of its W3C
    baggage, as the middlewares do. Metadata is input from any client: an invalid value is
    replaced and never logged.
    """
    value: Any = None
    baggage_header: Any = None
    wanted = metadata_key()
    for key, candidate in metadata or ():
        if key == wanted:
            value = candidate
            break
        if key == BAGGAGE_HEADER_NAME and baggage_header is None:
            baggage_header = candidate
    else:
        if baggage and isinstance(baggage_header, str):
            value = baggage_session_id(baggage_header)
    if isinstance(value, str) and is_valid_session_id(value):
        return SessionContext(value)
    return SessionContext()


class SessionServerInterceptor(grpc.ServerInterceptor):
    """Run each call of a `grpc.server` in its own session, handler and response stream alike.

    The id comes from the call's `mirascope-session-id` metadata when it is valid; otherwise
    the call gets a new session, as an HTTP request behind the middleware does. Unary and
    streaming methods are served; the session is set in a Context of the call's own, so a
    pool thread that serves the next call never sees it.

    Args:
        baggage: When the call carries no valid session metadata, accept the `session.id`
            entry of its W3C `baggage` metadata (what OpenTelemetry's gRPC instrumentation
            sends with `OTEL_PROPAGATORS=tracecontext,baggage`).

    Example:
        server = grpc.server(executor, interceptors=[SessionServerInterceptor()])
    """

    def __init__(self, *, baggage: bool = False) -> None:
        self.baggage = _check_baggage(baggage)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = handler_call_details.invocation_metadata
        return _replace_behavior(handler, _sync_wrapper, _incoming_session(metadata, self.baggage))


class AsyncSessionServerInterceptor(grpc.aio.ServerInterceptor):
    """The same for `grpc.aio.server`: async handlers and async response generators.

    Example:
        server = grpc.aio.server(interceptors=[AsyncSessionServerInterceptor()])
    """

    def __init__(self, *, baggage: bool = False) -> None:
        self.baggage = _check_baggage(baggage)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED
        metadata = handler_call_details.invocation_metadata
        session = _incoming_session(metadata, self.baggage)
        return _replace_behavior(handler, _async_wrapper, session)


def _check_baggage(baggage: object) -> bool:
    if not isinstance(baggage, bool):
        raise TypeError(f"baggage must be a bool, got {baggage!r}.")
    return baggage


_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _replace_behavior(
    handler: _Handler,
    wrap: Callable[[_Behavior, SessionContext, bool], _Behavior],
    session: SessionContext,
) -> _Handler:
    for kind, factory in _FACTORIES.items():
        behavior = getattr(handler, kind, None)
        if behavior is not None:
            return factory(
                wrap(behavior, session, kind.endswith("stream")),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler  # pragma: no cover - every handler grpc builds has one behavior


def _start(session: SessionContext) -> contextvars.Context:
    """A Context of the call's own, with its session current and the listeners told."""
    context = contextvars.copy_context()
    context.run(activate, session)
    if request_listeners:
        context.run(notify_request_started, session)
    return context


def _sync_wrapper(behavior: _Behavior, session: SessionContext, streams: bool) -> _Behavior:
    def call_in_session(request: Any, servicer_context: Any) -> Any:
        context = _start(session)
        result = context.run(behavior, request, servicer_context)
        if streams:
            # grpc iterates the response stream after we return: each step in the call's Context.
            return _steps_in(context, context.run(iter, result))
        return result

    return call_in_session


def _steps_in(context: contextvars.Context, responses: Iterator[Any]) -> Iterator[Any]:
    run = context.run
    while (response := run(next, responses, _END)) is not _END:
        yield response


def _async_wrapper(behavior: _Behavior, session: SessionContext, streams: bool) -> _Behavior:
    # grpc.aio tells async handlers from sync ones by their function's kind: keep it.
    if inspect.isasyncgenfunction(behavior):

        async def stream_in_session(request: Any, servicer_context: Any) -> AsyncIterator[Any]:
            responses = aiter(behavior(request, servicer_context))
            while True:
                # Each step in its own set and reset: the generator may be resumed elsewhere.
                token = activate(session)
                try:
                    response = await anext(responses)
                except StopAsyncIteration:
                    return
                finally:
                    deactivate(token)
                yield response

        return stream_in_session
    if inspect.iscoroutinefunction(behavior):

        async def call_in_session(request: Any, servicer_context: Any) -> Any:
            token = activate(session)
            try:
                if request_listeners:
                    notify_request_started(session)
                return await behavior(request, servicer_context)
            finally:
                deactivate(token)

        return call_in_session
    return _sync_wrapper(behavior, session, streams)  # a sync handler, run in a thread pool
