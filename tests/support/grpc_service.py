"""A gRPC service whose every method answers with the session its handler runs in.

Generic handlers over raw bytes (no generated code): each response is the current session's id,
or `-` outside any session. Sync handlers for `grpc.server`, async ones for `grpc.aio.server`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import grpc.aio

from ops_session import current_session

SERVICE = "ops_session.test.Sessions"
UNARY = f"/{SERVICE}/Unary"
SERVER_STREAM = f"/{SERVICE}/ServerStream"
CLIENT_STREAM = f"/{SERVICE}/ClientStream"
BIDI_STREAM = f"/{SERVICE}/BidiStream"
WRITER_STREAM = f"/{SERVICE}/WriterStream"
STREAM_LENGTH = 3
# Past its 8 KiB soft limit a server refuses calls at random: room for oversized baggage.
SERVER_OPTIONS = [("grpc.max_metadata_size", 64 * 1024)]


def identity(data: bytes) -> bytes:
    return data


def unary_unary(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)


def unary_stream(channel: grpc.Channel, method: str) -> grpc.UnaryStreamMultiCallable[bytes, bytes]:
    return channel.unary_stream(method, request_serializer=identity, response_deserializer=identity)


def stream_unary(channel: grpc.Channel, method: str) -> grpc.StreamUnaryMultiCallable[bytes, bytes]:
    return channel.stream_unary(method, request_serializer=identity, response_deserializer=identity)


def stream_stream(
    channel: grpc.Channel, method: str
) -> grpc.StreamStreamMultiCallable[bytes, bytes]:
    return channel.stream_stream(
        method, request_serializer=identity, response_deserializer=identity
    )


def aio_unary_unary(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)


def aio_unary_stream(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]:
    return channel.unary_stream(method, request_serializer=identity, response_deserializer=identity)


def aio_stream_unary(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.StreamUnaryMultiCallable[bytes, bytes]:
    return channel.stream_unary(method, request_serializer=identity, response_deserializer=identity)


def aio_stream_stream(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.StreamStreamMultiCallable[bytes, bytes]:
    return channel.stream_stream(
        method, request_serializer=identity, response_deserializer=identity
    )


def seen() -> bytes:
    current = current_session()
    return (current.id if current else "-").encode()


def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request:  # a delay in seconds: keeps calls overlapping on the server
        time.sleep(float(request))
    return seen()


def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for _ in range(STREAM_LENGTH):
        yield seen()


def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b",".join(seen() for _ in requests)


def bidi_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for _ in requests:
        yield seen()


async def aio_unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    if request:
        await asyncio.sleep(float(request))
    return seen()


async def aio_server_stream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    for _ in range(STREAM_LENGTH):
        await asyncio.sleep(0)
        yield seen()


async def aio_client_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> bytes:
    return b",".join([seen() async for _ in requests])


async def aio_bidi_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    async for _ in requests:
        yield seen()


async def aio_writer_stream(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """A response stream written with `context.write` from a coroutine, not a generator."""
    for _ in range(STREAM_LENGTH):
        await context.write(seen())


def sync_handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(bidi_stream),
        },
    )


def aio_handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(aio_unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(aio_server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(aio_client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(aio_bidi_stream),
            "WriterStream": grpc.unary_stream_rpc_method_handler(aio_writer_stream),
            # A sync handler on the aio server runs in its thread pool.
            "SyncUnary": grpc.unary_unary_rpc_method_handler(unary),
            "SyncServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        },
    )


@contextmanager
def sync_server(
    interceptors: list[grpc.ServerInterceptor], *, workers: int = 8
) -> Iterator[tuple[str, ThreadPoolExecutor]]:
    """A `grpc.server` on a free 127.0.0.1 port; yields its target and its thread pool."""
    with ThreadPoolExecutor(max_workers=workers) as executor:
        server = grpc.server(executor, interceptors=interceptors, options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((sync_handlers(),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            yield f"127.0.0.1:{port}", executor
        finally:
            server.stop(grace=None).wait(10)


@asynccontextmanager
async def aio_server(
    interceptors: list[grpc.aio.ServerInterceptor],
) -> AsyncIterator[tuple[str, ThreadPoolExecutor]]:
    """A `grpc.aio.server` on a free 127.0.0.1 port; yields its target and its thread pool."""
    with ThreadPoolExecutor(max_workers=4) as executor:
        server = grpc.aio.server(
            migration_thread_pool=executor, interceptors=interceptors, options=SERVER_OPTIONS
        )
        server.add_generic_rpc_handlers((aio_handlers(),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield f"127.0.0.1:{port}", executor
        finally:
            await server.stop(grace=None)
