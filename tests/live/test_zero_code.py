"""Apps with no ops-session setup, run under `opentelemetry-instrument` with environment only.

FastAPI (uvicorn) calls Flask (gunicorn) with a plain httpx client; a Django project (gunicorn)
has no ops-session in `MIDDLEWARE`. Spans go to standard output (the console exporter), log lines
to standard error through OpenTelemetry's logging instrumentation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tools.files import complete_lines
from tools.loopback import HOST, ROOT, free_port, running

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

from ..support.shell import kind, run_page, shell_blocks

pytestmark = pytest.mark.servers

INSTRUMENT = str(Path(sys.executable).parent / "opentelemetry-instrument")
LLM_INSTRUMENTATIONS = "openai,anthropic,google-genai"
"""What the test group installs for Mirascope: instrumented, each process would import the three
SDKs at start-up (about 6 seconds here), and these apps call none of them."""
ENVIRONMENT = {
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": LLM_INSTRUMENTATIONS,
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_PROPAGATORS": "tracecontext,baggage,ops_session",
    "OTEL_PYTHON_LOG_CORRELATION": "true",
    "OTEL_PYTHON_LOG_FORMAT": "%(levelname)s session=%(session_id)s %(name)s: %(message)s",
    "OPS_SESSION_OUTGOING_HOSTS": HOST,
    "OPS_SESSION_ATTRIBUTES": '{"app": "zero-code"}',
    "PYTHONUNBUFFERED": "1",
}


def uvicorn(target: str, port: int) -> list[str]:
    return [
        INSTRUMENT,
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def gunicorn(target: str, port: int) -> list[str]:
    return [INSTRUMENT, sys.executable, "-m", "gunicorn", target, "--bind", f"{HOST}:{port}"]


@dataclass
class Service:
    url: str
    output: Path

    def spans(self) -> list[dict[str, Any]]:
        """The console exporter's spans: indented JSON objects, one after another."""
        spans, block = [], []
        for line in complete_lines(self.output):
            if line == "{":
                block = [line]
            elif block:
                block.append(line)
                if line == "}":
                    spans.append(json.loads("\n".join(block)))
                    block = []
        return spans

    def server_spans(self) -> list[dict[str, Any]]:
        return [span for span in self.spans() if span["kind"] == "SpanKind.SERVER"]


@dataclass
class Services:
    fastapi_app: Service
    flask_app: Service
    django_app: Service


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    directory = tmp_path_factory.mktemp("zero-code")
    ports = {name: free_port() for name in ("fastapi", "flask", "django")}
    flask_url = f"http://{HOST}:{ports['flask']}"
    django_env = {"DJANGO_SETTINGS_MODULE": "tests.live.apps.zero_code_django.settings"}
    with (
        running(
            gunicorn("examples.zero_code.flask_app:app", ports["flask"]),
            ports["flask"],
            env=ENVIRONMENT,
            output=directory / "flask.out",
        ) as flask_started,
        running(
            gunicorn("tests.live.apps.zero_code_django.wsgi:application", ports["django"]),
            ports["django"],
            env={**ENVIRONMENT, **django_env},
            output=directory / "django.out",
        ) as django_started,
        running(
            uvicorn("examples.zero_code.fastapi_app:app", ports["fastapi"]),
            ports["fastapi"],
            env={**ENVIRONMENT, "FLASK_APP_URL": flask_url},
            output=directory / "fastapi.out",
        ) as fastapi_started,
    ):
        yield Services(
            Service(fastapi_started, directory / "fastapi.out"),
            Service(flask_started, directory / "flask.out"),
            Service(django_started, directory / "django.out"),
        )


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the service did not write what was expected"
        time.sleep(0.05)


def test_the_session_crosses_the_hop_with_spans_and_logs(services: Services) -> None:
    response = httpx.get(f"{services.fastapi_app.url}/hop", headers={SESSION_HEADER_NAME: "zc-1"})
    assert response.status_code == 200
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["zc-1"]
    assert response.json() == {
        "fastapi_app": {"service": "fastapi_app", "session_id": "zc-1"},
        "flask_app": {"service": "flask_app", "session_id": "zc-1", "received_header": "zc-1"},
    }
    for service in (services.fastapi_app, services.flask_app):
        wait_for(lambda service=service: service.server_spans())
        (server_span,) = service.server_spans()
        assert server_span["attributes"]["session.id"] == "zc-1"
        assert server_span["attributes"]["mirascope.ops.session.attributes"] == (
            '{"app":"zero-code"}'
        )
    fastapi_log = services.fastapi_app.output.read_text(encoding="utf-8")
    assert "WARNING session=zc-1 zero_code.fastapi_app: calling the Flask service" in fastapi_log
    flask_log = services.flask_app.output.read_text(encoding="utf-8")
    assert "WARNING session=zc-1 zero_code.flask_app: reading the session" in flask_log


def test_a_request_without_the_header_gets_a_generated_session(services: Services) -> None:
    response = httpx.get(f"{services.fastapi_app.url}/session")
    generated = response.headers[SESSION_HEADER_NAME]
    assert is_valid_session_id(generated) and response.json()["session_id"] == generated


def test_django_gets_the_middleware_from_the_instrumentation(services: Services) -> None:
    response = httpx.get(
        f"{services.django_app.url}/session", headers={SESSION_HEADER_NAME: "zc-django"}
    )
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["zc-django"]
    assert response.json() == {"service": "django_app", "session_id": "zc-django"}
    wait_for(services.django_app.server_spans)
    (server_span,) = services.django_app.server_spans()
    assert server_span["attributes"]["session.id"] == "zc-django"


def test_the_allow_list_keeps_the_id_from_other_hosts(tmp_path: Path) -> None:
    port = free_port()
    command = uvicorn("examples.zero_code.fastapi_app:app", port)
    env = {**ENVIRONMENT, "OPS_SESSION_OUTGOING_HOSTS": "api.internal"}
    flask_port = free_port()
    flask = gunicorn("examples.zero_code.flask_app:app", flask_port)
    with (
        running(flask, flask_port, env=ENVIRONMENT, output=tmp_path / "flask.out"),
        running(
            command,
            port,
            env={**env, "FLASK_APP_URL": f"http://{HOST}:{flask_port}"},
            output=tmp_path / "fastapi.out",
        ) as url,
    ):
        hopped = httpx.get(f"{url}/hop", headers={SESSION_HEADER_NAME: "zc-2"}).json()
    assert hopped["fastapi_app"]["session_id"] == "zc-2"
    # 127.0.0.1 is not api.internal: Flask got no id, and made one of its own.
    assert hopped["flask_app"]["session_id"] not in (None, "zc-2")


def test_two_services_configured_with_one_header_name_keep_the_session(tmp_path: Path) -> None:
    """Issue 27, point 7: `OPS_SESSION_HEADER_NAME` names what each service reads and sends."""
    env = {**ENVIRONMENT, "OPS_SESSION_HEADER_NAME": "X-Conversation-Id"}
    port, flask_port = free_port(), free_port()
    with (
        running(
            gunicorn("examples.zero_code.flask_app:app", flask_port),
            flask_port,
            env=env,
            output=tmp_path / "flask.out",
        ),
        running(
            uvicorn("examples.zero_code.fastapi_app:app", port),
            port,
            env={**env, "FLASK_APP_URL": f"http://{HOST}:{flask_port}"},
            output=tmp_path / "fastapi.out",
        ) as url,
    ):
        response = httpx.get(f"{url}/hop", headers={"X-Conversation-Id": "zc-named"})
    assert response.headers.get("X-Conversation-Id") == "zc-named"
    hopped = response.json()
    assert hopped["fastapi_app"]["session_id"] == "zc-named"
    assert hopped["flask_app"]["session_id"] == "zc-named"


def test_disabling_the_instrumentation_turns_it_all_off(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **ENVIRONMENT,
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": f"{LLM_INSTRUMENTATIONS},ops_session",
    }
    command = uvicorn("examples.zero_code.fastapi_app:app", port)
    with running(command, port, env=env, output=tmp_path / "out") as url:
        response = httpx.get(f"{url}/session", headers={SESSION_HEADER_NAME: "zc-3"})
    assert SESSION_HEADER_NAME not in response.headers
    assert response.json()["session_id"] is None


def test_a_bad_variable_stops_startup_naming_it() -> None:
    port = free_port()
    finished = subprocess.run(
        uvicorn("examples.zero_code.fastapi_app:app", port),
        cwd=ROOT,
        env={**os.environ, **ENVIRONMENT, "OPS_SESSION_ON_INVALID": "ignore"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    assert "ops-session: OPS_SESSION_ON_INVALID is invalid" in finished.stderr


ZERO_CODE_PAGE = ROOT / "docs" / "zero-code.md"


def test_the_zero_code_page_runs_as_pasted_in_a_fresh_virtualenv(
    wheel: Path, tmp_path: Path
) -> None:
    """Issue 27, point 20: the page's install command, then its app and commands, in a new venv.

    `tests/live/test_doc_commands.py` runs the page in this suite's virtualenv, which has every
    package; here only what the page installs is there, so a package it forgets fails. This
    tree's wheel is installed first, so that the page's `pip install 'ops-session[otel]' ...`
    adds the extra to it instead of fetching a release.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel], check=True, timeout=300)
    path = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    installs = [block for block in shell_blocks(ZERO_CODE_PAGE) if kind(block) == "install"]
    assert installs, "the page installs nothing"
    for block in installs:
        subprocess.run(
            ["bash", "-e", "-c", block.source],
            env={**os.environ, "PATH": path, "PIP_QUIET": "1"},
            check=True,
            timeout=600,
        )
    page = tmp_path / "page"
    page.mkdir()
    with run_page(ZERO_CODE_PAGE, page, env={"PATH": path}) as run:
        assert shutil.which("opentelemetry-instrument", path=path) == str(
            venv / "bin" / "opentelemetry-instrument"
        )
        assert run.servers, "the page runs no server"
        assert run.outputs, "the page runs no client command"
