"""fastmcp: tool calls carry the caller's session, handlers run in it.  [extra: fastmcp]

Client side, `send_session(transport)` wraps a fastmcp client transport so that each request a
`fastmcp.Client` sends carries the caller's current session id in `params._meta` under
`SESSION_META_KEY`, and over HTTP also in the `Mirascope-Session-Id` header, written when the
message is sent, in the caller's task. It is the same stamping as `ops_session.mcp`, whose
`SessionWriteStream` fastmcp's transports get through their `TransportOptions.session_class`.

Server side, `continue_sessions(server)` puts `SessionMiddleware` first in the server's
middleware: each handler runs in the session its own request carried. Nothing is read, minted,
echoed or keyed on `Mcp-Session-Id`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urlsplit

try:
    from fastmcp import FastMCP
    from fastmcp.client.transports import (
        ClientTransport,
        FastMCPTransport,
        SSETransport,
        StdioTransport,
        StreamableHttpTransport,
        infer_transport,
    )
    from fastmcp.client.transports.base import SessionKwargs, TransportOptions
    from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
    from mcp import ClientSession
    from typing_extensions import Unpack
except ImportError as error:
    raise ImportError(
        "ops_session.fastmcp needs fastmcp: install 'ops-session[fastmcp]'."
    ) from error

from ._mcp_meta import SESSION_META_KEY, carried_session
from ._rules import outgoing_hosts
from .mcp import SessionWriteStream

__all__ = ["SESSION_META_KEY", "SessionMiddleware", "continue_sessions", "send_session"]


class _SessionTransport(ClientTransport):
    """A fastmcp transport whose sessions write through a `SessionWriteStream`."""

    def __init__(self, transport: ClientTransport, host: str | None) -> None:
        self.transport = transport
        self.host = host
        self.legacy_only = transport.legacy_only

    @asynccontextmanager
    async def connect_session(
        self,
        *,
        transport_options: TransportOptions | None = None,
        **session_kwargs: Unpack[SessionKwargs],
    ) -> AsyncIterator[ClientSession]:
        options = transport_options or TransportOptions()
        options = replace(options, session_class=_session_class(options.session_class, self.host))
        async with self.transport.connect_session(
            transport_options=options, **session_kwargs
        ) as client_session:
            yield client_session

    async def close(self) -> None:
        await self.transport.close()  # type: ignore[no-untyped-call]  # fastmcp leaves it untyped

    def __repr__(self) -> str:
        return f"<send_session({self.transport!r})>"


# One class per (base, host): the stdio transport rebuilds a kept-alive connection when a client
# asks for other options, and a new class each time would be other options.
_session_classes: dict[tuple[type[ClientSession], str | None], type[ClientSession]] = {}


def _session_class(base: type[ClientSession], host: str | None) -> type[ClientSession]:
    """`base`, writing through a `SessionWriteStream`."""
    known = _session_classes.get((base, host))
    if known is not None:
        return known

    def __init__(self: ClientSession, *args: Any, **kwargs: Any) -> None:
        # The transports pass the streams by position (HTTP, stdio) or by name (in-memory).
        if len(args) > 1:
            args = (args[0], SessionWriteStream(args[1], host=host), *args[2:])
        elif kwargs.get("write_stream") is not None:
            kwargs["write_stream"] = SessionWriteStream(kwargs["write_stream"], host=host)
        base.__init__(self, *args, **kwargs)

    namespace = {"__init__": __init__, "__module__": __name__}
    made = cast(type[ClientSession], type(f"Session{base.__name__}", (base,), namespace))
    _session_classes[base, host] = made
    return made


def send_session(transport: ClientTransport | FastMCP[Any] | str) -> ClientTransport:
    """Make every request a `fastmcp.Client` sends over `transport` carry the caller's session.

    Inside a session each request (tool calls, resource reads, prompt gets, and the protocol's
    own) carries its id in `_meta`; over HTTP and SSE also in the session header, and only to a
    host that `ops_session.set_outgoing_hosts` (or `OPS_SESSION_OUTGOING_HOSTS`) allows, which
    is `@private` (this machine and private networks) unless set. Stdio and in-memory transports
    reach a process on this machine and are judged as `localhost`. Outside a session, requests
    go out unchanged. Only the id travels.

    Args:
        transport: A fastmcp HTTP, SSE, stdio or in-memory transport, or what `fastmcp.Client`
            infers one from: a URL, a `FastMCP` server.

    Raises:
        TypeError: Another kind of transport (an `MCPConfig` one: wrap each server's instead).
        ValueError: `OPS_SESSION_OUTGOING_HOSTS` is invalid.

    Example:
        client = Client(send_session("http://tools.internal/mcp"))
    """
    inferred: ClientTransport = infer_transport(transport)
    host: str | None = None
    if isinstance(inferred, _SessionTransport):
        return inferred
    if isinstance(inferred, StreamableHttpTransport | SSETransport):
        host = urlsplit(inferred.url).hostname or ""
    elif not isinstance(inferred, StdioTransport | FastMCPTransport):
        raise TypeError(
            "send_session() carries the session over fastmcp's HTTP, SSE, stdio and in-memory "
            f"transports, got {type(inferred).__qualname__}: wrap each server's transport instead."
        )
    outgoing_hosts()  # a bad rule stops the agent here, not at its first tool call
    return _SessionTransport(inferred, host)


class SessionMiddleware(Middleware):
    """fastmcp middleware that runs each inbound message in the session it carried.

    The id comes from the message's `params._meta[SESSION_META_KEY]`, else from the
    `Mirascope-Session-Id` header of the HTTP request that delivered it, and is checked like
    any incoming id. Without a valid one the handler runs outside any session, unless
    `generate=True` gives it a new one. fastmcp opens its server span before any middleware
    runs; `SessionSpanProcessor` stamps that span when this session starts. Not to be confused
    with `ops_session.SessionMiddleware`, the ASGI one.

    Example:
        server = FastMCP("tools", middleware=[SessionMiddleware()])
    """

    def __init__(self, *, generate: bool = False) -> None:
        self.generate = generate

    async def on_message(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        fastmcp_context = context.fastmcp_context
        request = fastmcp_context.request_context if fastmcp_context is not None else None
        meta = request.meta if request is not None else None
        http_request = request.request if request is not None else None
        headers = http_request.headers if http_request is not None else None
        with carried_session(meta, headers, generate=self.generate):
            return await call_next(context)


def continue_sessions(server: FastMCP[Any], *, generate: bool = False) -> FastMCP[Any]:
    """Run every handler of `server` in the session its own request carried; return `server`.

    Puts a `SessionMiddleware` first in `server.middleware`. Calling it again for the same
    server does nothing.

    Args:
        server: A `fastmcp.FastMCP` server.
        generate: Give requests that carry no valid id a new session instead of none.

    Raises:
        TypeError: `server` is not a `FastMCP` server.
        ValueError: It was already called for `server` with a different `generate`.

    Example:
        server = continue_sessions(FastMCP("tools"))
    """
    if not isinstance(server, FastMCP):
        raise TypeError(
            f"continue_sessions() needs a fastmcp.FastMCP server, got "
            f"{type(server).__qualname__}: for the official SDK's servers use ops_session.mcp."
        )
    for middleware in server.middleware:
        if isinstance(middleware, SessionMiddleware):
            if middleware.generate != generate:
                raise ValueError(
                    f"continue_sessions() was already called for this server with "
                    f"generate={middleware.generate}; call it once per server, with one setting."
                )
            return server
    server.middleware.insert(0, SessionMiddleware(generate=generate))
    return server
