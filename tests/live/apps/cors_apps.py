"""Apps behind CORS layers, for pages on another origin that send and read the session header.

`PAGE_ORIGIN` names the one origin allowed to call them (`http://127.0.0.1:<port>` of the page).
`no_expose_app` is the control: CORS allows the page to call it, but does not expose the header.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from flask import Flask
from flask_cors import CORS

from ops_session import (
    SESSION_HEADER_NAME,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
)

PAGE_ORIGIN = os.environ.get("PAGE_ORIGIN", "http://127.0.0.1:8000")


def session_id() -> dict[str, str | None]:
    current = current_session()
    return {"session_id": current.id if current else None}


def build_fastapi_app(*, expose: bool) -> FastAPI:
    app = FastAPI()
    app.add_api_route("/session", session_id, methods=["GET", "POST"])
    app.add_middleware(SessionMiddleware)
    # Added last, so it runs first: preflight requests are answered before any session starts.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[PAGE_ORIGIN],
        allow_methods=["GET", "POST"],
        allow_headers=[SESSION_HEADER_NAME],
        expose_headers=[SESSION_HEADER_NAME] if expose else [],
    )
    return app


fastapi_app = build_fastapi_app(expose=True)
no_expose_app = build_fastapi_app(expose=False)

flask_app = Flask(__name__)
flask_app.add_url_rule("/session", view_func=session_id, methods=["GET", "POST"])
CORS(
    flask_app,
    origins=[PAGE_ORIGIN],
    allow_headers=[SESSION_HEADER_NAME],
    expose_headers=[SESSION_HEADER_NAME],
)
flask_app.wsgi_app = WSGISessionMiddleware(flask_app.wsgi_app)  # type: ignore[method-assign]
