from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import ops_session
from ops_session import asgi, wsgi


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(ops_session).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    } - {"annotations"}
    assert ops_session.__all__ == sorted(ops_session.__all__)
    assert set(ops_session.__all__) == public


def test_root_offers_both_middlewares() -> None:
    assert ops_session.SessionMiddleware is asgi.SessionMiddleware
    assert ops_session.WSGISessionMiddleware is wsgi.SessionMiddleware
    assert ops_session.SESSION_HEADER_NAME == "Mirascope-Session-Id"


def test_importing_the_package_needs_only_the_standard_library() -> None:
    # Only what the import adds: a `*-nspkg.pth` file (PasteDeploy's, under Pyramid) imports its
    # namespace package at interpreter startup, before any code runs.
    code = (
        "import sys; before = set(sys.modules);"
        "import ops_session, ops_session.asgi, ops_session.wsgi, ops_session.futures;"
        "import ops_session._mcp_meta;"
        "stdlib = sys.stdlib_module_names;"
        "names = {m.split('.')[0] for m in set(sys.modules) - before if not m.startswith('_')};"
        "print(sorted(names - stdlib - {'ops_session'}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "[]"


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("ops_session").joinpath("py.typed").is_file()
