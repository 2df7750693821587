"""Run as a script in a virtualenv that holds ops-session with one extra: use that extra for real.

    python extras_smoke.py REDIS_URL EXTRA [EXTRA ...]

Each check imports only the standard library, ops-session and the extra's own libraries (it runs
where nothing else is installed), talks to a real server on 127.0.0.1 (a stdlib echo server, the
library's own server, or the Redis at REDIS_URL) and raises when the session does not arrive.
Prints one line per extra checked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops_session import SESSION_HEADER_NAME, current_session, session

HOST = "127.0.0.1"


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get(SESSION_HEADER_NAME) or "-").encode("latin-1")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer((HOST, 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def expect(seen: object, wanted: object, what: str) -> None:
    if seen != wanted:
        raise AssertionError(f"{what}: expected {wanted!r}, got {seen!r}")


def check_httpx(redis_url: str) -> None:
    import httpx

    from ops_session.httpx import send_session

    with echo_server() as url, send_session(httpx.Client(trust_env=False)) as client:
        with session(id="smoke-httpx"):
            expect(client.get(url).text, "smoke-httpx", "httpx")


def check_httpx2(redis_url: str) -> None:
    import httpx2

    from ops_session.httpx2 import send_session

    with echo_server() as url, send_session(httpx2.Client(trust_env=False)) as client:
        with session(id="smoke-httpx2"):
            expect(client.get(url).text, "smoke-httpx2", "httpx2")


def check_requests(redis_url: str) -> None:
    import requests

    from ops_session.requests import send_session

    with echo_server() as url, send_session(requests.Session()) as http:
        http.trust_env = False
        with session(id="smoke-requests"):
            expect(http.get(url, timeout=10).text, "smoke-requests", "requests")


def check_aiohttp(redis_url: str) -> None:
    from aiohttp import ClientSession, web

    from ops_session.aiohttp import SessionTraceConfig

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get(SESSION_HEADER_NAME, "-"))

    async def run() -> str:
        app = web.Application()
        app.router.add_get("/", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession(trace_configs=[SessionTraceConfig()]) as client:
                with session(id="smoke-aiohttp"):
                    async with client.get(f"http://{HOST}:{port}/") as response:
                        return await response.text()
        finally:
            await runner.cleanup()

    expect(asyncio.run(run()), "smoke-aiohttp", "aiohttp")


def check_django(redis_url: str) -> None:
    import urllib.request

    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def view(request: HttpRequest) -> HttpResponse:
        current = current_session()
        return HttpResponse(current.id if current else "-")

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=[HOST],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["ops_session.django.SessionMiddleware"],
        SECRET_KEY="smoke",
    )
    globals()["urlpatterns"] = [path("", view)]
    django.setup()
    # Django's own development server (runserver's), serving Django's WSGI handler.
    server = WSGIServer((HOST, 0), WSGIRequestHandler)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(
            f"http://{HOST}:{server.server_address[1]}/",
            headers={SESSION_HEADER_NAME: "smoke-django"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            expect(response.read().decode(), "smoke-django", "django body")
            expect(response.headers[SESSION_HEADER_NAME], "smoke-django", "django header")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def check_otel(redis_url: str) -> None:
    from opentelemetry import propagate
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ops_session.instrumentation import SessionInstrumentor
    from ops_session.otel import SessionPropagator, SessionSpanProcessor, extracted_session_id

    # OTEL_PROPAGATORS=ops_session (set by the caller) loads ours from its entry point; under
    # `all`, Mirascope's check replaced the global with its own, and ops-session kept ours beside.
    members = getattr(propagate.get_global_textmap(), "_propagators", [])
    ours = [type(member) for member in members if isinstance(member, SessionPropagator)]
    expect(ours, [SessionPropagator], "propagator from OTEL_PROPAGATORS")
    carrier = {"host": "orders.internal"}
    with session(id="smoke-otel"):
        propagate.inject(carrier)
    expect(carrier.get(SESSION_HEADER_NAME), "smoke-otel", "inject")
    expect(extracted_session_id(propagate.extract(carrier)), "smoke-otel", "extract")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with session(id="smoke-span"), provider.get_tracer("smoke").start_as_current_span("s"):
        pass
    (span,) = exporter.get_finished_spans()
    expect((span.attributes or {}).get("session.id"), "smoke-span", "span")
    provider.shutdown()
    instrumentor = SessionInstrumentor()
    instrumentor.instrument()
    instrumentor.uninstrument()


def check_celery(redis_url: str) -> None:
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    from ops_session.celery import propagate_sessions

    app = Celery("smoke", broker=f"{redis_url}/1", backend=f"{redis_url}/2")
    propagate_sessions(app)

    @app.task(name="smoke.seen")
    def seen() -> str | None:
        current = current_session()
        return current.id if current else None

    import celery.contrib.testing.tasks  # noqa: F401  (the ping task the test worker checks)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with session(id="smoke-celery"):
            result = seen.delay()
        expect(result.get(timeout=30), "smoke-celery", "celery")


def check_rq(redis_url: str) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    from ops_session.rq import SessionJob

    connection = Redis.from_url(f"{redis_url}/3")
    queue = Queue(f"smoke-{uuid.uuid4().hex}", connection=connection, job_class=SessionJob)
    with session(id="smoke-rq"):
        # The job returns the session it ran in; RQ refuses functions of a script's __main__.
        job = queue.enqueue(current_session)
    worker = SimpleWorker([queue], connection=connection, job_class=SessionJob)
    worker.work(burst=True)
    job.refresh()  # type: ignore[no-untyped-call]
    returned = job.return_value()
    expect(getattr(returned, "id", returned), "smoke-rq", "rq")
    connection.close()


def check_arq(redis_url: str) -> None:
    from arq import Worker, create_pool
    from arq.connections import RedisSettings
    from arq.worker import func

    from ops_session.arq import continue_sessions, enqueue_job

    @continue_sessions
    async def arq_seen(ctx: dict[str, Any]) -> str | None:
        current = current_session()
        return current.id if current else None

    async def run() -> Any:
        settings = RedisSettings.from_dsn(f"{redis_url}/4")
        redis = await create_pool(settings)
        with session(id="smoke-arq"):
            job = await enqueue_job(redis, "arq_seen")
        worker = Worker(
            functions=[func(arq_seen, name="arq_seen")],  # type: ignore[arg-type]
            redis_settings=settings,
            burst=True,
            handle_signals=False,
        )
        try:
            await worker.main()
        finally:
            await worker.close()
        assert job is not None
        result = await job.result(timeout=10)
        await redis.aclose()
        return result

    expect(asyncio.run(run()), "smoke-arq", "arq")


def check_mirascope(redis_url: str) -> None:
    from mirascope import ops

    expect(ops.session.__module__, "mirascope.ops._internal.session", "a real mirascope.ops")
    with ops.session(id="smoke-mirascope"):
        current = current_session()
        expect(current.id if current else None, "smoke-mirascope", "mirascope -> ops-session")
    with session(id="smoke-ours"):
        carrier: dict[str, str] = {}
        ops.inject_context(carrier)
        expect(carrier.get(SESSION_HEADER_NAME), "smoke-ours", "ops-session -> mirascope")


def check_mcp(redis_url: str) -> None:
    from mcp import Client
    from mcp.client._memory import InMemoryTransport
    from mcp.server import MCPServer

    from ops_session.mcp import continue_sessions, send_session

    server = continue_sessions(MCPServer("smoke"))

    @server.tool()
    def whoami() -> str:
        current = current_session()
        return current.id if current else "-"

    async def run() -> str:
        async with Client(send_session(InMemoryTransport(server), url=None)) as tools:
            with session(id="smoke-mcp"):
                result = await tools.call_tool("whoami", {})
        return str(result.structured_content or result.content)

    seen = asyncio.run(run())
    expect("smoke-mcp" in seen, True, f"mcp (the tool answered {seen!r})")


def check_fastmcp(redis_url: str) -> None:
    from fastmcp import Client, FastMCP

    from ops_session.fastmcp import continue_sessions, send_session

    server = continue_sessions(FastMCP("smoke"))

    @server.tool
    def whoami() -> str:
        current = current_session()
        return current.id if current else "-"

    async def run() -> str:
        async with Client(send_session(server)) as tools:
            with session(id="smoke-fastmcp"):
                return str((await tools.call_tool("whoami", {})).data)

    expect(asyncio.run(run()), "smoke-fastmcp", "fastmcp")


def check_grpc(redis_url: str) -> None:
    from concurrent import futures

    import grpc

    from ops_session.grpc import SessionClientInterceptor, SessionServerInterceptor

    def whoami(request: bytes, context: Any) -> bytes:
        current = current_session()
        return (current.id if current else "-").encode()

    handler = grpc.method_handlers_generic_handler(
        "smoke.Smoke",
        {"WhoAmI": grpc.unary_unary_rpc_method_handler(whoami)},
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[SessionServerInterceptor()]
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    try:
        target = f"{HOST}:{port}"
        channel = grpc.intercept_channel(
            grpc.insecure_channel(target), SessionClientInterceptor(target=target)
        )
        call: Any = channel.unary_unary("/smoke.Smoke/WhoAmI")
        with session(id="smoke-grpc"):
            seen = call(b"", timeout=10)
        channel.close()
    finally:
        server.stop(None)
    expect(seen, b"smoke-grpc", "grpc")


def check_temporal(redis_url: str) -> None:
    from datetime import timedelta

    from temporalio import activity, workflow
    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from ops_session.temporal import SessionInterceptor

    @activity.defn
    async def whoami() -> str:
        current = current_session()
        return current.id if current else "-"

    async def run_workflow(self: object) -> str:
        timeout = timedelta(seconds=10)
        return str(await workflow.execute_activity(whoami, start_to_close_timeout=timeout))

    # Temporal refuses workflow classes defined in a function: name this one as a module's.
    run_workflow.__qualname__ = "SmokeWorkflow.run"
    smoke = type("SmokeWorkflow", (), {"run": workflow.run(run_workflow)})
    smoke.__qualname__ = "SmokeWorkflow"
    workflow.defn(sandboxed=False)(smoke)

    async def run() -> str:
        target = os.environ["TEMPORAL_TARGET"]
        client = await Client.connect(target, interceptors=[SessionInterceptor()])
        async with Worker(
            client,
            task_queue="smoke",
            workflows=[smoke],
            activities=[whoami],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            with session(id="smoke-temporal"):
                handle = await client.start_workflow(
                    "SmokeWorkflow", id=f"smoke-{uuid.uuid4()}", task_queue="smoke"
                )
            return str(await handle.result())

    expect(asyncio.run(run()), "smoke-temporal", "temporal")


CHECKS: dict[str, Callable[[str], None]] = {
    "aiohttp": check_aiohttp,
    "arq": check_arq,
    "celery": check_celery,
    "django": check_django,
    "fastmcp": check_fastmcp,
    "grpc": check_grpc,
    "httpx": check_httpx,
    "httpx2": check_httpx2,
    "mcp": check_mcp,
    "mirascope": check_mirascope,
    "otel": check_otel,
    "requests": check_requests,
    "rq": check_rq,
    "temporal": check_temporal,
}


if __name__ == "__main__":
    redis_url, *extras = sys.argv[1:]
    assert os.environ.get("OTEL_PROPAGATORS") == "ops_session", "run with OTEL_PROPAGATORS set"
    for extra in sorted(CHECKS) if extras == ["all"] else extras:
        CHECKS[extra](redis_url)
        print(f"{extra}: ok")
    if "temporal" in extras or extras == ["all"]:
        # Temporal's Rust runtime keeps threads that can abort interpreter finalization
        # (PyGILState_Release) after every check passed: leave without finalizing.
        sys.stdout.flush()
        os._exit(0)
