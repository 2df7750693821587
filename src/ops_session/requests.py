"""Send the current session's id with every request of a `requests.Session`.  [extra: requests]"""

from __future__ import annotations

from typing import Any

try:
    import requests
    from requests.adapters import HTTPAdapter
except ImportError as error:
    raise ImportError(
        "ops_session.requests needs requests: install 'ops-session[requests]'."
    ) from error

from ._core import inject_session


class SessionAdapter(HTTPAdapter):
    """A `requests` transport adapter that adds the session header to each request it sends.

    It takes `HTTPAdapter`'s arguments (`max_retries`, pool sizes), so it can replace an adapter
    you configured. Outside a session, and when the request already carries the header, nothing
    changes.

    Example:
        http = send_session(requests.Session())
    """

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        super().add_headers(request, **kwargs)
        inject_session(request.headers)


def send_session(http: requests.Session, **adapter_options: Any) -> requests.Session:
    """Mount a `SessionAdapter` for http:// and https:// on a `requests.Session`, and return it.

    Args:
        http: The session to change.
        adapter_options: Passed to `SessionAdapter` (`max_retries`, `pool_maxsize`, ...).
    """
    adapter = SessionAdapter(**adapter_options)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http
