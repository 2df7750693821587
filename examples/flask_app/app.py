"""A Flask service whose every request runs in a session.

Run: gunicorn --chdir examples/flask_app --bind 127.0.0.1:5001 app:app
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware, current_session

app = Flask(__name__)
# Flask types wsgi_app as a method; replacing it is the documented way to add WSGI middleware.
app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
    app.wsgi_app, attributes={"service": "flask_app"}
)


@app.get("/session")
def read_session() -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return {
        "service": "flask_app",
        "session_id": current.id,
        "attributes": dict(current.attributes or {}),
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }
