"""FastAPI sub-applications and routers with middleware stacks of their own.

The harness runs its checks inside the mount; these check the borders: what runs outside a
mounted app's session, and which layer's attributes a route inside a nested stack sees.
"""

from __future__ import annotations

import pytest

from ops_session import SESSION_HEADER_NAME

from .conftest import Served, for_frameworks
from .harness import FRAMEWORKS

pytestmark = pytest.mark.servers


def by_name(name: str) -> pytest.MarkDecorator:
    return for_frameworks([framework for framework in FRAMEWORKS if framework.name == name])


@by_name("fastapi-mounted-app")
def test_mounted_app_sessions_stop_at_its_mount(served: Served) -> None:
    headers = {SESSION_HEADER_NAME: "mount-1"}
    with served.client() as client:
        inside = client.get("/attributes", headers=headers)
        outside = client.get("../outside", headers=headers)
    assert inside.json() == {"app": "sub"}
    assert inside.headers.get_list(SESSION_HEADER_NAME) == ["mount-1"]
    assert outside.json() == {"id": None, "request_header": "mount-1"}
    assert SESSION_HEADER_NAME not in outside.headers


@by_name("fastapi-router-stack")
def test_router_stack_gives_its_routes_its_own_attributes_in_one_session(served: Served) -> None:
    with served.client() as client:
        inside = client.get("/attributes", headers={SESSION_HEADER_NAME: "stack-1"})
        generated = client.get("/session")
        outside = client.get("../outside", headers={SESSION_HEADER_NAME: "stack-2"})
    assert inside.json() == {"app": "api-router"}
    assert inside.headers.get_list(SESSION_HEADER_NAME) == ["stack-1"]
    # The outer layer generates the id and shows it to the inner one, which keeps it.
    (generated_id,) = generated.headers.get_list(SESSION_HEADER_NAME)
    assert generated.json() == {"id": generated_id, "request_header": generated_id}
    assert outside.json() == {"id": "stack-2", "request_header": "stack-2"}
