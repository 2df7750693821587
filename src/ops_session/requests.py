"""Send the current session's id with the requests of a `requests.Session`.  [extra: requests]"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

try:
    import requests
except ImportError as error:
    raise ImportError(
        "ops_session.requests needs requests: install 'ops-session[requests]'."
    ) from error

from ._hosts import OutgoingHosts
from ._outgoing import update_session_header
from ._rules import client_rule


class _SessionSender:
    """A `requests.Session.send` that writes the session header, then calls the session's own."""

    def __init__(self, send: Any, hosts: OutgoingHosts | None) -> None:
        self.send = send
        self.hosts = hosts

    def __call__(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # A redirect re-sends a copy of the previous request (`PreparedRequest.copy()`) with
        # its headers, the session header included: it is judged again for the new host.
        update_session_header(
            request.headers, urlsplit(request.url or "").hostname or "", self.hosts
        )
        response: requests.Response = self.send(request, **kwargs)
        return response


def send_session(http: requests.Session, *, hosts: Iterable[str] | None = None) -> requests.Session:
    """Make a `requests.Session` send the session header, and return it.

    The header is added as each request, or redirect hop, is sent, whichever adapter you mounted
    serves it (with its retries and pool options), including adapters mounted later. Calling it
    again replaces the rule.

    Args:
        http: The session to change.
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); requests to other hosts, redirects included, get
            no session header. `None` follows the process-wide rule (`set_outgoing_hosts`,
            `OPS_SESSION_OUTGOING_HOSTS`), which allows your own hosts (`"@private"`) unless set.

    Raises:
        ValueError: A host pattern, or `OPS_SESSION_OUTGOING_HOSTS` when it applies, is invalid.

    Example:
        http = send_session(requests.Session(), hosts=["*.internal"])
    """
    rule = client_rule(hosts)
    current = vars(http).get("send")
    send = current.send if isinstance(current, _SessionSender) else http.send
    # An instance attribute shadows the method: `Session.request` and `resolve_redirects` both
    # call `self.send`, so every hop passes through here.
    http.send = _SessionSender(send, rule)  # type: ignore[method-assign]
    return http
