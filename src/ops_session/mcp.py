"""The official MCP SDK: tool calls carry the caller's session, handlers run in it.  [extra: mcp]

Client side, `send_session(transport, url=...)` wraps any `mcp.client.Transport`: each request
and notification a `Client` or `ClientSession` sends through it carries the caller's current
session id in `params._meta` under `SESSION_META_KEY`, and over HTTP also in the
`Mirascope-Session-Id` header. Both are written when the message is sent, in the caller's task,
so two conversations that share one connection keep their own ids.

Server side, `continue_sessions(server)` puts `SessionServerMiddleware` first in the server's
middleware: each handler runs in the session its own request carried. Neither side reads,
mints, echoes or keys anything on `Mcp-Session-Id`, which the 2026-07-28 revision removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

try:
    from mcp.server import MCPServer, Server, ServerRequestContext
    from mcp.server.context import CallNext, HandlerResult
    from mcp.shared.message import ClientMessageMetadata, SessionMessage
    from mcp_types import JSONRPCNotification, JSONRPCRequest
except ImportError as error:
    raise ImportError("ops_session.mcp needs the MCP SDK: install 'ops-session[mcp]'.") from error

from ._core import current_session
from ._mcp_meta import SESSION_META_KEY, carried_session, with_session_meta
from ._outgoing import may_carry_session, outgoing_header_name
from ._rules import outgoing_hosts

if TYPE_CHECKING:
    from mcp.client import Transport
    from mcp.client._transport import TransportStreams, WriteStream

__all__ = [
    "SESSION_META_KEY",
    "SessionServerMiddleware",
    "SessionWriteStream",
    "continue_sessions",
    "send_session",
]

ServerT = TypeVar("ServerT", Server[Any], MCPServer)


def _may_send_session(host: str | None) -> bool:
    """Whether a message to an MCP server at `host` may carry the id (`None`: stdio, in-memory).

    The one place where MCP clients meet the outgoing rule. A transport without a URL talks to
    a process on this machine (a stdio subprocess, or this process), judged as `localhost`.
    """
    return may_carry_session("mcp", host or "localhost")


class SessionWriteStream:
    """A transport's write stream whose requests and notifications carry the current session.

    The SDK's dispatcher sends each message from the task that makes the call, so the id is the
    caller's at call time. It goes into `params._meta[SESSION_META_KEY]` and, when `host` is
    set (an HTTP transport), into the `Mirascope-Session-Id` header of that message's HTTP
    request, only where `ops_session.set_outgoing_hosts` allows `host`. A message whose `_meta`
    holds the key already is sent as it is. Responses, and messages sent outside a session, pass
    unchanged. `send_session` builds this for a whole transport.

    Example:
        session = ClientSession(read_stream, SessionWriteStream(write_stream, host=None))
    """

    def __init__(self, stream: WriteStream[SessionMessage], *, host: str | None) -> None:
        self._stream = stream
        self._host = host

    async def send(self, item: SessionMessage, /) -> None:
        await self._stream.send(_stamped(item, self._host))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> SessionWriteStream:
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._stream.__aexit__(exc_type, exc_value, traceback)


def _stamped(item: SessionMessage, host: str | None) -> SessionMessage:
    message = item.message
    current = current_session()
    if current is None or not isinstance(message, JSONRPCRequest | JSONRPCNotification):
        return item
    if not _may_send_session(host):
        return item
    params = with_session_meta(message.params, current.id)
    if params is None:
        return item
    metadata = item.metadata
    header_name = outgoing_header_name()
    if (
        host is not None
        and header_name is not None
        and (metadata is None or isinstance(metadata, ClientMessageMetadata))
    ):
        headers = dict(metadata.headers or {}) if metadata is not None else {}
        if not any(name.lower() == header_name.lower() for name in headers):
            headers[header_name] = current.id
        metadata = dataclasses.replace(metadata or ClientMessageMetadata(), headers=headers)
    return SessionMessage(message.model_copy(update={"params": params}), metadata)


class _SessionTransport:
    """A `Transport` whose write stream is a `SessionWriteStream`."""

    def __init__(self, transport: Transport, host: str | None) -> None:
        self._transport = transport
        self._host = host

    async def __aenter__(self) -> TransportStreams:
        read_stream, write_stream = await self._transport.__aenter__()
        return read_stream, SessionWriteStream(write_stream, host=self._host)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._transport.__aexit__(exc_type, exc_value, traceback)


def send_session(transport: Transport, *, url: str | None) -> Transport:
    """Make every request sent over `transport` carry the caller's current session.

    Give the result to `mcp.Client` (or enter it and give its streams to a `ClientSession`).
    Inside a session each request (tool calls, resource reads, prompt gets, and the protocol's
    own) carries its id in `_meta`; over HTTP also in the session header. Outside a session,
    requests go out unchanged. Only the id travels, never the session's attributes.

    Args:
        transport: Any `mcp.client.Transport`: `streamable_http_client(...)`,
            `stdio_client(...)`, an in-memory transport.
        url: The MCP endpoint's URL for an HTTP transport: the id goes only to a host that
            `ops_session.set_outgoing_hosts` (or `OPS_SESSION_OUTGOING_HOSTS`) allows, which is
            `@private` (this machine and private networks) unless set. `None` for stdio and
            in-memory transports, whose server runs on this machine: judged as `localhost`.

    Raises:
        ValueError: `url` is not an absolute URL with a host, or `OPS_SESSION_OUTGOING_HOSTS`
            is invalid.

    Example:
        Client(send_session(streamable_http_client(URL), url=URL))
    """
    host = None
    if url is not None:
        host = urlsplit(url).hostname if isinstance(url, str) else None
        if not host:
            raise ValueError(
                f"Expected the MCP endpoint's absolute URL, such as 'http://tools.internal/mcp', "
                f"got {url!r}: pass url=None only for stdio and in-memory transports."
            )
    outgoing_hosts()  # a bad rule stops the agent here, not at its first tool call
    return _SessionTransport(transport, host)


class SessionServerMiddleware:
    """A `ServerMiddleware` that runs each inbound message in the session it carried.

    The id comes from the message's `params._meta[SESSION_META_KEY]`, else from the
    `Mirascope-Session-Id` header of the HTTP request that delivered it, and is checked like
    any incoming id. Without a valid one the handler runs outside any session, unless
    `generate=True` gives it a new one. The session is current for the rest of the middleware
    chain, the handler, and the spans and log lines they make; `continue_sessions` puts it
    first, so the SDK's own server span starts inside it.

    Example:
        server.middleware.insert(0, SessionServerMiddleware())
    """

    def __init__(self, *, generate: bool = False) -> None:
        self.generate = generate

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        meta = ctx.params.get("_meta") if ctx.params is not None else None
        headers = getattr(ctx.request, "headers", None)
        headers = headers if isinstance(headers, Mapping) else None
        with carried_session(meta, headers, generate=self.generate):
            return await call_next(ctx)


def continue_sessions(server: ServerT, *, generate: bool = False) -> ServerT:
    """Run every handler of `server` in the session its own request carried; return `server`.

    Puts a `SessionServerMiddleware` first in `server.middleware`. Calling it again for the
    same server does nothing.

    Args:
        server: A low-level `mcp.server.Server` or an `MCPServer`.
        generate: Give requests that carry no valid id a new session instead of none.

    Raises:
        TypeError: `server` is not an MCP SDK server.
        ValueError: It was already called for `server` with a different `generate`.

    Example:
        server = continue_sessions(MCPServer("tools"))
    """
    if not isinstance(server, Server | MCPServer):
        raise TypeError(
            f"continue_sessions() needs an mcp.server.Server or MCPServer, got "
            f"{type(server).__qualname__}: for fastmcp servers use ops_session.fastmcp."
        )
    for middleware in server.middleware:
        if isinstance(middleware, SessionServerMiddleware):
            if middleware.generate != generate:
                raise ValueError(
                    f"continue_sessions() was already called for this server with "
                    f"generate={middleware.generate}; call it once per server, with one setting."
                )
            return server
    server.middleware.insert(0, SessionServerMiddleware(generate=generate))
    return server
