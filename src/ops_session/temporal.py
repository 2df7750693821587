"""Temporal: workflows, activities and their messages run in the session they were started in.

`SessionInterceptor` is a client and worker interceptor, as Temporal's own `TracingInterceptor`
is. On the client it writes the caller's session id into the Temporal headers of every workflow
start, signal, query and update; in workflows it writes the workflow's session into the headers
of the activities, child workflows, signals and continue-as-new it starts; on the worker it makes
the session those headers carry current around the workflow, each handler and each activity.
Workflow code stays deterministic: the id is read from the history's headers, never from the
worker's context, so a replay sees what the first run saw.  [extra: temporal]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

try:
    import temporalio.activity
    import temporalio.client
    import temporalio.converter
    import temporalio.worker
    import temporalio.workflow
    from temporalio.api.common.v1 import Payload
except ImportError as error:
    raise ImportError(
        "ops_session.temporal needs the Temporal SDK: install 'ops-session[temporal]'."
    ) from error

from ._baggage import baggage_session_id
from ._core import (
    SESSION_HEADER_NAME,
    SessionContext,
    activate,
    current_session,
    deactivate,
    is_valid_session_id,
)
from ._outgoing import may_carry_session

__all__ = ["HEADER_KEY", "TRACING_HEADER_KEY", "SessionInterceptor"]

HEADER_KEY = SESSION_HEADER_NAME
"""The Temporal header that carries the session id, as a JSON string payload."""

TRACING_HEADER_KEY = "_tracer-data"
"""The header of `temporalio.contrib.opentelemetry.TracingInterceptor`: a JSON object of the
`traceparent`, `tracestate` and `baggage` its propagator wrote."""

_CONVERTER = temporalio.converter.PayloadConverter.default
_Headers = Mapping[str, Payload]


class SessionInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Carry the session through Temporal: client calls, workflows, handlers and activities.

    Give it to `Client.connect(interceptors=[...])`: the client and every worker built on that
    client use it. A workflow started inside a session runs in it, and so do its activities
    (retries included), child workflows, continue-as-new runs, and the signals, updates and
    queries sent to it: each handler runs in the session its message carried, or the
    workflow's when the message carried none. A workflow started outside any session, and
    everything it starts, sees `current_session() is None`. Only the id travels, never the
    attributes; an invalid id in a header is ignored.

    List it before `TracingInterceptor`, so that the workflow and activity spans start inside
    the session and `SessionSpanProcessor` stamps them. Workflow code reads the session with
    `current_session()` once `ops_session` is passed through the sandbox
    (`with workflow.unsafe.imports_passed_through(): import ops_session`).

    Args:
        baggage: When a call carries no session header, accept the `session.id` entry of the
            W3C baggage that `TracingInterceptor` carries (see the middlewares' `baggage`
            option), so that callers using only OpenTelemetry reach the same session.

    Example:
        client = await Client.connect("127.0.0.1:7233", interceptors=[SessionInterceptor()])
    """

    def __init__(self, *, baggage: bool = False) -> None:
        if not isinstance(baggage, bool):
            raise TypeError(f"baggage must be a bool, got {baggage!r}.")
        self.baggage = baggage

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next, self.baggage)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return _BaggageWorkflowInbound if self.baggage else _WorkflowInbound


def _outgoing_id() -> str | None:
    """The id to write into an outgoing call's headers: the current session's, if any.

    Temporal headers go to the Temporal service and the workers, and name no host: the one
    outgoing rule (`may_carry_session`) decides for a carrier without host, the `temporal` kind.
    """
    current = current_session()
    return current.id if current is not None and may_carry_session("temporal", None) else None


def _with_session(headers: _Headers) -> _Headers:
    """`headers` plus the current session's id; a session header already there stands."""
    session_id = _outgoing_id()
    if session_id is None or HEADER_KEY in headers:
        return headers
    return {**headers, HEADER_KEY: _CONVERTER.to_payloads([session_id])[0]}


def _incoming_id(headers: _Headers, baggage: bool) -> str | None:
    """The valid session id `headers` carry: ours, else (with `baggage`) the tracing baggage's.

    Headers are input from any client of the Temporal service: anything but a well-formed id,
    including a payload that does not decode, is ignored and never logged.
    """
    value = _decoded(headers.get(HEADER_KEY))
    if value is None and baggage:
        carrier = _decoded(headers.get(TRACING_HEADER_KEY))
        if isinstance(carrier, dict) and isinstance(carrier.get("baggage"), str):
            value = baggage_session_id(carrier["baggage"])
    return value if isinstance(value, str) and is_valid_session_id(value) else None


def _decoded(payload: Payload | None) -> Any:
    if payload is None:
        return None
    try:
        return _CONVERTER.from_payloads([payload])[0]
    except Exception:
        return None


def _session_for(session_id: str | None) -> SessionContext | None:
    return None if session_id is None else SessionContext(session_id)


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    """Writes the caller's session into the headers of every call that reaches a workflow."""

    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        input.headers = _with_session(input.headers)
        return await self.next.start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = _with_session(input.headers)
        await self.next.signal_workflow(input)

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        input.headers = _with_session(input.headers)
        return await self.next.query_workflow(input)

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.headers = _with_session(input.headers)
        return await self.next.start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        start, update = input.start_workflow_input, input.update_workflow_input
        start.headers = _with_session(start.headers)
        update.headers = _with_session(update.headers)
        return await self.next.start_update_with_start_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    """Runs each activity attempt in the session its headers carry, or in none."""

    def __init__(self, next: temporalio.worker.ActivityInboundInterceptor, baggage: bool) -> None:
        super().__init__(next)
        self._baggage = baggage

    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        # None too: an activity without a session must not see one the worker left current.
        # Temporal copies this context into the thread of a synchronous activity.
        token = activate(_session_for(_incoming_id(input.headers, self._baggage)))
        try:
            return await self.next.execute_activity(input)
        finally:
            deactivate(token)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    """Runs the workflow, and each of its handlers, in the session its headers carry.

    Each runs in a task (or, for update validators, a call) of its own, so every one sets the
    session and resets it in its own `finally`.
    """

    baggage = False

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))

    def _workflow_id(self) -> str | None:
        # The start event's headers are in the history, so a replay reads the same id.
        return _incoming_id(temporalio.workflow.info().headers, self.baggage)

    def _handler_session(self, headers: _Headers) -> SessionContext | None:
        return _session_for(_incoming_id(headers, self.baggage) or self._workflow_id())

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        token = activate(_session_for(_incoming_id(input.headers, self.baggage)))
        try:
            return await self.next.execute_workflow(input)
        finally:
            deactivate(token)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        token = activate(self._handler_session(input.headers))
        try:
            await self.next.handle_signal(input)
        finally:
            deactivate(token)

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        token = activate(self._handler_session(input.headers))
        try:
            return await self.next.handle_query(input)
        finally:
            deactivate(token)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        token = activate(self._handler_session(input.headers))
        try:
            self.next.handle_update_validator(input)
        finally:
            deactivate(token)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        token = activate(self._handler_session(input.headers))
        try:
            return await self.next.handle_update_handler(input)
        finally:
            deactivate(token)


class _BaggageWorkflowInbound(_WorkflowInbound):
    """`_WorkflowInbound` that also accepts the tracing baggage's `session.id`."""

    baggage = True


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    """Writes the session current in workflow code into what the workflow starts or signals.

    That session was made current from the history's headers (or by the workflow's own
    deterministic code), so the headers written here are the same on every replay.
    """

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> NoReturn:
        input.headers = _with_session(input.headers)
        self.next.continue_as_new(input)

    async def signal_child_workflow(
        self, input: temporalio.worker.SignalChildWorkflowInput
    ) -> None:
        input.headers = _with_session(input.headers)
        await self.next.signal_child_workflow(input)

    async def signal_external_workflow(
        self, input: temporalio.worker.SignalExternalWorkflowInput
    ) -> None:
        input.headers = _with_session(input.headers)
        await self.next.signal_external_workflow(input)

    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = _with_session(input.headers)
        return self.next.start_activity(input)

    async def start_child_workflow(
        self, input: temporalio.worker.StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        input.headers = _with_session(input.headers)
        return await self.next.start_child_workflow(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = _with_session(input.headers)
        return self.next.start_local_activity(input)
