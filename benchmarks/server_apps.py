"""The apps the load benchmark serves, by module attribute: `benchmarks.server_apps:<name>`.

Each is built here on its own, not taken from the in-process configurations: building those
imports Mirascope (seconds for every server started) and sets up tracing providers that no
served app uses.
"""

from __future__ import annotations

from asgi_correlation_id import CorrelationIdMiddleware
from starlette.middleware import Middleware
from werkzeug.middleware.proxy_fix import ProxyFix

from ops_session import SessionMiddleware, WSGISessionMiddleware

from . import asgi_apps, wsgi_apps
from .required import (
    AnsweringWithTheId,
    PassThroughMiddleware,
    RequiredStepsWithDefaults,
    WSGIPassThroughMiddleware,
    WSGIRequiredStepsWithDefaults,
)

bare_starlette = asgi_apps.starlette()
bare_starlette_setting_the_header = asgi_apps.starlette_setting_the_header()
pass_through_starlette = asgi_apps.starlette(Middleware(PassThroughMiddleware))
floor_starlette = asgi_apps.floor()
ops_session_starlette = asgi_apps.starlette(Middleware(SessionMiddleware))
required_steps_starlette = asgi_apps.starlette(Middleware(asgi_apps.RequiredStepsMiddleware))
required_steps_with_defaults_starlette = asgi_apps.starlette(Middleware(RequiredStepsWithDefaults))
asgi_correlation_id_starlette = asgi_apps.starlette(Middleware(CorrelationIdMiddleware))

bare_flask = wsgi_apps.flask_app().wsgi_app
bare_flask_setting_the_header = wsgi_apps.flask_setting_the_header()
pass_through_flask = WSGIPassThroughMiddleware(wsgi_apps.flask_app().wsgi_app)
floor_flask = wsgi_apps.floor()
ops_session_flask = WSGISessionMiddleware(wsgi_apps.flask_app().wsgi_app)
required_steps_flask = AnsweringWithTheId(wsgi_apps.flask_app().wsgi_app)
required_steps_with_defaults_flask = WSGIRequiredStepsWithDefaults(wsgi_apps.flask_app().wsgi_app)
proxy_fix_flask = ProxyFix(wsgi_apps.flask_app().wsgi_app)
