"""Send the current session's id with the requests of an aiohttp client.  [extra: aiohttp]"""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

try:
    import aiohttp
    from yarl import URL
except ImportError as error:
    raise ImportError(
        "ops_session.aiohttp needs aiohttp: install 'ops-session[aiohttp]'."
    ) from error

from ._outgoing import update_session_header
from ._rules import client_rule


class SessionTraceConfig(aiohttp.TraceConfig):
    """An aiohttp `TraceConfig` that adds the session header to a `ClientSession`'s requests.

    aiohttp builds each hop of a request, redirects included, from the one header dict that
    `on_request_start` receives, and reports every redirect through `on_request_redirect` before
    following it: a hop to a host that `hosts` does not allow gets no session header, and loses
    one holding the current session's id. A session header holding another id is yours, and is
    sent as you set it. Outside a session nothing changes.

    Args:
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); `None` follows the process-wide rule
            (`set_outgoing_hosts`, `OPS_SESSION_OUTGOING_HOSTS`), which allows your own hosts
            (`"@private"`) unless set.

    Raises:
        ValueError: A host pattern, or `OPS_SESSION_OUTGOING_HOSTS` when it applies, is invalid.

    Example:
        aiohttp.ClientSession(trace_configs=[SessionTraceConfig(hosts=["*.internal"])])
    """

    def __init__(self, *, hosts: Iterable[str] | None = None) -> None:
        super().__init__()
        self.hosts = client_rule(hosts)
        self.on_request_start.append(self._add_session_header)
        self.on_request_redirect.append(self._update_on_redirect)

    async def _add_session_header(
        self,
        client: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        update_session_header(params.headers, params.url.raw_host or "", self.hosts)

    async def _update_on_redirect(
        self,
        client: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestRedirectParams,
    ) -> None:
        # `params.url` is the hop just answered; aiohttp follows Location (or URI) from it next.
        headers = params.response.headers
        location = headers.get("Location") or headers.get("URI") or ""
        try:
            host = params.url.join(URL(location)).raw_host or ""
        except ValueError:
            host = ""  # aiohttp refuses this redirect with its own error; no hop follows
        update_session_header(params.headers, host, self.hosts)
