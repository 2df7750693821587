"""The chat's assistant: each turn asks a model through `mirascope.llm`, traced by Mirascope's ops.

The example imports this module only when `LLM_BASE_URL` names an OpenAI-compatible server, such
as `tools/model_server.py` (importing Mirascope takes seconds). The OpenAI provider is registered
with that base URL, and `mirascope.ops.instrument_llm()` traces every call as a GenAI span (its
messages and token usage) into the app's tracer provider, where `SessionSpanProcessor` stamps it
with the request's session. The model server is a third party: the allow-list
(`OPS_SESSION_OUTGOING_HOSTS`) keeps the session id away from it.
"""

from __future__ import annotations

from mirascope import llm, ops
from opentelemetry.sdk.trace import TracerProvider

PROVIDER = "openai"
# A conversation keeps its last messages for the next turn; the oldest conversations are dropped.
MAX_MESSAGES = 20
MAX_CONVERSATIONS = 1000


def configure_assistant(provider: TracerProvider, *, base_url: str, api_key: str) -> None:
    """Trace `mirascope.llm` calls into `provider`, and send them to the server at `base_url`.

    `mirascope.ops.configure` also makes `provider` the global tracer provider.
    """
    ops.configure(tracer_provider=provider)
    ops.instrument_llm()
    llm.register_provider(PROVIDER, base_url=base_url, api_key=api_key)


class Assistant:
    """Answers each session's messages with one model call that includes its earlier turns."""

    def __init__(self, model_id: str) -> None:
        if not model_id.startswith(f"{PROVIDER}/"):
            raise ValueError(
                f"Expected an OpenAI model id such as 'openai/gpt-4o-mini:completions', got "
                f"{model_id!r}: set LLM_MODEL to an id that starts with 'openai/'."
            )
        self._model = llm.Model(model_id)
        self._conversations: dict[str, list[llm.Message]] = {}

    async def reply(self, session_id: str, message: str) -> str:
        """The model's answer to `message`, the next turn of the session's conversation."""
        history = self._conversations.pop(session_id, [])
        response = await self._model.call_async([*history, llm.messages.user(message)])
        self._conversations[session_id] = response.messages[-MAX_MESSAGES:]
        if len(self._conversations) > MAX_CONVERSATIONS:
            del self._conversations[next(iter(self._conversations))]
        return response.text()
