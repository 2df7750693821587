"""The apps the load benchmark serves, by module attribute: `benchmarks.server_apps:<name>`."""

from __future__ import annotations

from starlette.middleware import Middleware

from . import asgi_apps, wsgi_apps
from .required import AnsweringWithTheId

_asgi = asgi_apps.configurations()
_wsgi = wsgi_apps.configurations()

bare_starlette = _asgi["bare Starlette"][0]
bare_starlette_setting_the_header = asgi_apps.starlette_setting_the_header()
pass_through_starlette = _asgi["pass-through middleware"][0]
floor_starlette = asgi_apps.floor()
ops_session_starlette = _asgi["ops-session, valid id"][0]
required_steps_starlette = asgi_apps.starlette(Middleware(asgi_apps.RequiredStepsMiddleware))
asgi_correlation_id_starlette = _asgi["asgi-correlation-id"][0]

bare_flask = _wsgi["bare Flask"][0]
bare_flask_setting_the_header = wsgi_apps.flask_setting_the_header()
pass_through_flask = _wsgi["pass-through middleware"][0]
floor_flask = wsgi_apps.floor()
ops_session_flask = _wsgi["ops-session, valid id"][0]
required_steps_flask = AnsweringWithTheId(wsgi_apps.flask_app().wsgi_app)
proxy_fix_flask = _wsgi["werkzeug ProxyFix"][0]
