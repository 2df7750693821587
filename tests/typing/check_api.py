"""What users write, type-checked under mypy --strict and never run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import falcon
import falcon.asgi
import grpc
import grpc.aio
import temporalio.client
from aiohttp import web
from fastapi import FastAPI
from flask import Flask
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from quart import Quart
from sanic import Sanic
from starlette.applications import Starlette
from starlette.middleware import Middleware

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    extract_session_id,
    inject_session,
    session,
)
from ops_session.aiohttp import SessionMiddleware as AiohttpSessionMiddleware
from ops_session.aiohttp import setup
from ops_session.asgi import ASGIApp, Scope
from ops_session.grpc import (
    AsyncSessionServerInterceptor,
    SessionClientInterceptor,
    SessionServerInterceptor,
    async_client_interceptors,
)
from ops_session.temporal import SessionInterceptor


def per_request(scope: Scope) -> dict[str, Any]:
    return {"path": scope["path"]}


fastapi_app = FastAPI()
fastapi_app.add_middleware(SessionMiddleware)
fastapi_app.add_middleware(
    SessionMiddleware,
    header_name="X-Conversation-Id",
    on_invalid="reject",
    attributes=per_request,
    update_request_header=False,
)
fastapi_app.add_middleware(
    SessionMiddleware,
    also_accept=("X-Mirascope-Session-Id",),
    query_param="session_id",
    cookie="sid",
    set_cookie=True,
    cookie_max_age=3600,
)
fastapi_app.add_middleware(SessionMiddleware, baggage=True)
starlette_app = Starlette(middleware=[Middleware(SessionMiddleware, attributes={"env": "prod"})])
wrapped = SessionMiddleware(FastAPI())

flask_app = Flask(__name__)
flask_app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
    flask_app.wsgi_app, attributes=lambda environ: {"method": environ["REQUEST_METHOD"]}
)
flask_app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
    flask_app.wsgi_app, also_accept=["X-Mirascope-Session-Id"], query_param="sid", cookie="sid"
)
flask_app.wsgi_app = WSGISessionMiddleware(flask_app.wsgi_app, baggage=True)  # type: ignore[method-assign]

# Engines: what users hand to Temporal and gRPC.
temporal_interceptors: list[temporalio.client.Interceptor] = [SessionInterceptor(baggage=True)]
grpc_server = grpc.server(ThreadPoolExecutor(1), interceptors=[SessionServerInterceptor()])
grpc_channel = grpc.intercept_channel(
    grpc.insecure_channel("orders.internal:50051"),
    SessionClientInterceptor(target="orders.internal:50051"),
)
aio_server = grpc.aio.server(interceptors=[AsyncSessionServerInterceptor(baggage=True)])
aio_channel = grpc.aio.insecure_channel(
    "orders.internal:50051", interceptors=async_client_interceptors(target="orders.internal:50051")
)

# Other frameworks' own ways of adding ASGI middleware, each with its own scope and message types.
litestar_app = Litestar(middleware=[DefineMiddleware(SessionMiddleware, on_invalid="reject")])
quart_app = Quart(__name__)
quart_app.asgi_app = SessionMiddleware(quart_app.asgi_app)  # type: ignore[method-assign]
falcon_asgi: ASGIApp = SessionMiddleware(falcon.asgi.App())
falcon_wsgi = WSGISessionMiddleware(falcon.App())
sanic_asgi: ASGIApp = SessionMiddleware(Sanic("check_api"))

aiohttp_app = web.Application()
aiohttp_middleware: AiohttpSessionMiddleware = setup(aiohttp_app, attributes={"env": "prod"})
aiohttp_app.middlewares.append(AiohttpSessionMiddleware(header_name="X-Conversation-Id"))

with session(attributes={"user": "ada", "tags": ["a"], "n": 1}) as context:
    same: SessionContext | None = current_session()
    outgoing: dict[str, str] = {}
    inject_session(outgoing)
incoming: str | None = extract_session_id({SESSION_HEADER_NAME: ["a", "b"]})
