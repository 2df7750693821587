"""What a hooked client must send where: one table shared by the httpx, httpx2, requests and
aiohttp tests, run against echo servers on three loopback addresses standing in for three hosts."""

from __future__ import annotations

from urllib.parse import quote

from ops_session import SESSION_HEADER_NAME

from .echo_server import NO_HEADER

SESSION_ID = "out-1"
ALLOWED = ["127.0.0.2", "*.internal"]
"""The `hosts=` of the clients under test: 127.0.0.1 and 127.0.0.3 stand for third parties."""

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")

Case = tuple[str, dict[str, str], str]


def redirect(base_url: str, to: str) -> str:
    return f"{base_url}/redirect?to={quote(to, safe='')}"


def allow_list_cases(servers: dict[str, str]) -> list[Case]:
    """(URL, request headers, expected echo) inside session `SESSION_ID`, for `hosts=ALLOWED`."""
    one, allowed, other = (servers[host] for host in HOSTS)
    mine = {SESSION_HEADER_NAME: "mine"}
    return [
        (f"{allowed}/", {}, SESSION_ID),
        (f"{other}/", {}, NO_HEADER),
        (f"{one}/", {}, NO_HEADER),
        (redirect(allowed, f"{other}/"), {}, NO_HEADER),  # ours is dropped on the way out
        (redirect(other, f"{allowed}/"), {}, SESSION_ID),  # and added on the way back in
        (redirect(allowed, f"{allowed}/"), {}, SESSION_ID),
        (redirect(allowed, redirect(other, f"{allowed}/")), {}, SESSION_ID),
        (f"{other}/", mine, "mine"),  # a header holding another id is the caller's to send
        (redirect(allowed, f"{other}/"), mine, "mine"),
        # The current id written by the caller (`inject_session`, a forwarded incoming header)
        # is ours all the same: it goes where the rule allows, never further (issue 27).
        (f"{other}/", {SESSION_HEADER_NAME: SESSION_ID}, NO_HEADER),
        (redirect(allowed, f"{other}/"), {SESSION_HEADER_NAME: SESSION_ID}, NO_HEADER),
        (redirect(allowed, f"{allowed}/"), {SESSION_HEADER_NAME: SESSION_ID}, SESSION_ID),
    ]


NAMES = {
    "orders": "127.0.0.2",
    "printer.local": "127.0.0.2",
    "api.internal": "127.0.0.2",
    "a.b.internal": "127.0.0.2",
    "internal": "127.0.0.3",
    "api.example.com": "127.0.0.3",
    "internal.example.com": "127.0.0.3",
    "llm.example.com": "127.0.0.3",
}
"""Where a resolver override sends each host name of `name_cases`."""


def name_cases(port: int | None = None) -> list[Case]:
    """The same for host names: through a resolver override, or the echo server as a proxy."""

    def url(name: str, path: str = "/") -> str:
        return f"http://{name}{'' if port is None else f':{port}'}{path}"

    return [
        (url("api.internal"), {}, SESSION_ID),
        (url("a.b.internal"), {}, SESSION_ID),
        (url("API.Internal"), {}, SESSION_ID),
        (url("internal"), {}, NO_HEADER),  # "*.internal" is the subdomains only
        (url("api.example.com"), {}, NO_HEADER),
        (url("internal.example.com"), {}, NO_HEADER),
        (redirect(url("api.internal", ""), url("llm.example.com")), {}, NO_HEADER),
        (redirect(url("llm.example.com", ""), url("api.internal")), {}, SESSION_ID),
    ]


def default_name_cases(port: int | None = None) -> list[Case]:
    """For hooks without `hosts=` and no process rule: the default, your own hosts (`@private`)."""

    def url(name: str, path: str = "/") -> str:
        return f"http://{name}{'' if port is None else f':{port}'}{path}"

    return [
        (url("orders"), {}, SESSION_ID),  # a Compose or Kubernetes service
        (url("api.internal"), {}, SESSION_ID),
        (url("printer.local"), {}, SESSION_ID),
        (url("llm.example.com"), {}, NO_HEADER),  # a third party
        (url("api.example.com"), {}, NO_HEADER),
        (redirect(url("orders", ""), url("llm.example.com")), {}, NO_HEADER),
    ]
