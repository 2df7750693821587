"""The client half of `ops_session.grpc`: the session id in each call's metadata.  [extra: grpc]

Split from `grpc.py`, which imports grpcio first and re-exports these names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import grpc
import grpc.aio

from ._core import SESSION_HEADER_NAME, current_session
from ._outgoing import may_carry_session, outgoing_header_name

__all__ = [
    "METADATA_KEY",
    "SessionClientInterceptor",
    "async_client_interceptors",
    "metadata_key",
]

METADATA_KEY = SESSION_HEADER_NAME.lower()
"""The default metadata key of the session id: gRPC metadata keys are lower-case."""


def metadata_key() -> str | None:
    """The metadata key now: the process-wide header name (`OPS_SESSION_HEADER_NAME`), lower
    case, so that every carrier of a service uses one name; `None` when that name is invalid."""
    name = outgoing_header_name()
    return None if name is None else name.lower()


def _target_host(target: str) -> str | None:
    """The host of a gRPC channel target (`host:port`, `dns:///host:port`, `ipv4:a:p`, ...).

    `None` for a Unix socket, which names no host.
    """
    if not isinstance(target, str) or not target:
        raise TypeError(
            f"target must be the channel's target string, such as 'orders.internal:50051', "
            f"got {target!r}."
        )
    if target.startswith(("unix:", "unix-abstract:")):
        return None
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            if target.startswith("//"):
                target = target[2:].partition("/")[2]  # dns://authority/host:port
            target = target.partition(",")[0]  # ipv4:a:p,b:p lists addresses
            break
    if target.startswith("["):
        return target[1:].partition("]")[0]
    return target.rpartition(":")[0] if target.count(":") == 1 else target


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class _Sender:
    """Decides, per call, what metadata the channel's calls carry."""

    def __init__(self, *, target: str) -> None:
        self.host = _target_host(target)

    def _session_entry(self, metadata: Any) -> tuple[str, str] | None:
        """The metadata entry to add: the current session's id, unless the host may not have
        it or the caller set the key themselves."""
        current = current_session()
        # A target without a host is a Unix socket: a server on this machine.
        if current is None or not may_carry_session("grpc", self.host or "localhost"):
            return None
        key = metadata_key()
        if key is None or any(pair[0] == key for pair in metadata or ()):
            return None
        return key, current.id


class SessionClientInterceptor(
    _Sender,
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Send the caller's session id with every call of a sync channel, within the allow-list.

    Inside a session, each call to an allowed host carries `mirascope-session-id` metadata;
    outside one, or to a host the outgoing rule refuses, calls go out unchanged. Metadata the
    caller set under that key is kept. Only the id travels, never the attributes.

    Args:
        target: The channel's target, as given to `grpc.insecure_channel`: its host is judged
            by the process-wide allow-list (`set_outgoing_hosts`).

    Example:
        channel = grpc.intercept_channel(
            grpc.insecure_channel(TARGET), SessionClientInterceptor(target=TARGET)
        )
    """

    def _details(self, details: Any) -> Any:
        entry = self._session_entry(details.metadata)
        if entry is None:
            return details
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), entry],
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _AsyncSender(_Sender):
    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        entry = self._session_entry(details.metadata)
        if entry is None:
            return details
        metadata = grpc.aio.Metadata(*details.metadata) if details.metadata else grpc.aio.Metadata()
        metadata.add(*entry)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _AsyncUnaryUnary(_AsyncSender, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AsyncUnaryStream(_AsyncSender, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AsyncStreamUnary(_AsyncSender, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AsyncStreamStream(_AsyncSender, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def async_client_interceptors(*, target: str) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors that send the session with every call of a `grpc.aio` channel.

    One per kind of method: a `grpc.aio` channel gives each interceptor one kind only.

    Args:
        target: The channel's target; its host is judged by the process-wide allow-list.

    Example:
        channel = grpc.aio.insecure_channel(TARGET, interceptors=async_client_interceptors(
            target=TARGET))
    """
    return [
        kind(target=target)
        for kind in (_AsyncUnaryUnary, _AsyncUnaryStream, _AsyncStreamUnary, _AsyncStreamStream)
    ]
