"""`install(app)`: the session layer outside everything else an app has, on the app itself.

Starlette and FastAPI build their middleware stack (`ServerErrorMiddleware` outermost) when the
first request or lifespan event arrives, and OpenTelemetry's `FastAPIInstrumentor` wraps that
build; Flask users and instrumentations replace `app.wsgi_app`. Whatever any of them does, and
in whichever order, the app object's own `__call__` runs first. `install` gives the app a
subclass of its own class whose `__call__` enters the session middleware, so the app stays the
object it was (routes, decorators, `dependency_overrides`, `fastapi run`) and our layer is the
outermost one: a 500 response, its error handler and any other middleware run in the session.
"""

from __future__ import annotations

from types import MethodType
from typing import Any, TypeVar, Unpack

from ._core import current_session
from ._options import OPTIONS, SessionOptions, unknown_option
from .asgi import STATE_KEY, SessionMiddleware
from .wsgi import SessionMiddleware as WSGISessionMiddleware

__all__ = ["install", "install_automatically"]

AppT = TypeVar("AppT")

_MIDDLEWARE_ATTRIBUTE = "_ops_session_middleware"
_AUTOMATIC_ATTRIBUTE = "_ops_session_automatic"
_installed_classes: dict[type[Any], type[Any]] = {}
# Where WSGI and ASGI wrappers keep the app they wrap: werkzeug, OpenTelemetry and ours `.app`,
# WhiteNoise `.application`, functools.wraps `__wrapped__`.
_WRAPPED_ATTRIBUTES = ("app", "application", "__wrapped__")
_MAX_WRAPPERS = 64


async def _asgi_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
    await self.__dict__[_MIDDLEWARE_ATTRIBUTE](scope, receive, send)


def _wsgi_call(self: Any, environ: Any, start_response: Any) -> Any:
    return self.__dict__[_MIDDLEWARE_ATTRIBUTE](environ, start_response)


def install(app: AppT, **options: Unpack[SessionOptions[Any]]) -> AppT:
    """Run every request of a Starlette, FastAPI or Flask app in a session, outermost.

    Takes the options of `SessionMiddleware` (`SessionOptions`: `header_name`, `generator`,
    `attributes`, ...), checks them now, so that a bad one stops the app at import, and returns
    the same `app`.

    Example:
        app = install(FastAPI())

    Raises:
        TypeError: `app` is not a Starlette, FastAPI or Flask application, or an option is
            unknown (the message names the closest one) or bad.
        ValueError: An option has a bad value.
        RuntimeError: The app already runs a session middleware (`install`, `add_middleware`,
            or a `wsgi_app` wrapped in `WSGISessionMiddleware`).
    """
    for name in options:
        if name not in OPTIONS:
            raise unknown_option(name, "install()")
    app_class = type(app)
    installed = getattr(app, "__dict__", {})
    if installed.pop(_AUTOMATIC_ATTRIBUTE, False):
        # Installed by `opentelemetry-instrument`: the app's own call, with its options, wins.
        app_class = app_class.__mro__[1]
        del installed[_MIDDLEWARE_ATTRIBUTE]
    elif _MIDDLEWARE_ATTRIBUTE in installed:
        raise RuntimeError(f"install() was already called on {app!r}; call it once per app.")
    kind = _kind(app_class)
    middleware: Any
    if kind == "asgi":
        if _adds_a_session_layer(app):
            raise RuntimeError(
                f"{app!r} already has SessionMiddleware from add_middleware(); keep one: "
                "remove that call, or do not call install()."
            )
        middleware = SessionMiddleware(MethodType(app_class.__call__, app), **options)
    elif kind == "wsgi":
        if _wraps_a_session_layer(getattr(app, "wsgi_app", None)):
            raise RuntimeError(
                f"{app!r} already has WSGISessionMiddleware around its wsgi_app; keep one: "
                "remove that wrapper, or do not call install()."
            )
        middleware = WSGISessionMiddleware(MethodType(app_class.__call__, app), **options)
    else:
        raise TypeError(
            f"install() takes a Starlette, FastAPI or Flask application, got {app!r}; wrap "
            "any other ASGI or WSGI app with SessionMiddleware or WSGISessionMiddleware."
        )
    app.__dict__[_MIDDLEWARE_ATTRIBUTE] = middleware
    app.__class__ = _installed_class(app_class, kind)
    return app


def install_automatically(app: Any, **options: Any) -> None:
    """`install(app)` for `opentelemetry-instrument`, unless the app runs a session layer itself.

    An explicit layer of ours always wins, however it is wrapped. One outside the app
    (`app = SessionMiddleware(app)`, or any server or wrapper around that) has already made the
    request's session by the time the app is called (ASGI: it is in `scope["state"]`; WSGI: it is
    current): this layer then passes the request through. One inside (among the
    `add_middleware` layers, or in the `wsgi_app` chain through `.app`, `.application` or
    `__wrapped__`) is known only once the app is set up, so the first call looks for it. A later
    `install(app)` replaces this one.
    """
    if _MIDDLEWARE_ATTRIBUTE in app.__dict__ or _kind(type(app)) is None:
        return
    install(app, **options)
    ours = app.__dict__[_MIDDLEWARE_ATTRIBUTE]
    bare = ours.app  # the app's own call
    chosen: Any = None
    if _kind(type(app)) == "asgi":

        async def automatic_asgi_call(scope: Any, receive: Any, send: Any) -> None:
            nonlocal chosen
            state = scope.get("state")
            if state is not None and STATE_KEY in state:
                await bare(scope, receive, send)  # a layer of ours outside runs this request
                return
            if chosen is None:
                chosen = bare if _adds_a_session_layer(app) else ours
            await chosen(scope, receive, send)

        app.__dict__[_MIDDLEWARE_ATTRIBUTE] = automatic_asgi_call
    else:

        def automatic_wsgi_call(environ: Any, start_response: Any) -> Any:
            nonlocal chosen
            if current_session() is not None:
                # A layer of ours outside runs this request: a WSGI server calls an app with
                # no session current, and our WSGI layer runs the app inside its own.
                return bare(environ, start_response)
            if chosen is None:
                chosen = bare if _wraps_a_session_layer(app.wsgi_app) else ours
            return chosen(environ, start_response)

        app.__dict__[_MIDDLEWARE_ATTRIBUTE] = automatic_wsgi_call
    app.__dict__[_AUTOMATIC_ATTRIBUTE] = True


def _adds_a_session_layer(app: Any) -> bool:
    """Whether a Starlette app has our middleware (or a subclass) among its `add_middleware`s."""
    return any(
        isinstance(layer.cls, type) and issubclass(layer.cls, SessionMiddleware)
        for layer in getattr(app, "user_middleware", ())
    )


def _wraps_a_session_layer(wsgi_app: Any) -> bool:
    """Whether our WSGI middleware is in a chain of wrappers, through the attributes they use."""
    pending, seen = [wsgi_app], set[int]()
    while pending and len(seen) < _MAX_WRAPPERS:
        layer = pending.pop()
        if layer is None or id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, WSGISessionMiddleware):
            return True
        pending.extend(getattr(layer, name, None) for name in _WRAPPED_ATTRIBUTES)
    return False


def _kind(app_class: type[Any]) -> str | None:
    # By name, so that neither framework is imported to tell which one `app` belongs to.
    for base in app_class.__mro__:
        if (base.__module__, base.__qualname__) == ("starlette.applications", "Starlette"):
            return "asgi"
        if base.__qualname__ == "Flask" and base.__module__ in ("flask.app", "flask"):
            return "wsgi"
    return None


def _installed_class(app_class: type[Any], kind: str) -> type[Any]:
    installed = _installed_classes.get(app_class)
    if installed is None:
        call = _asgi_call if kind == "asgi" else _wsgi_call
        installed = type(
            app_class.__name__,
            (app_class,),
            {
                "__call__": call,
                "__module__": app_class.__module__,
                "__qualname__": app_class.__qualname__,
                "__doc__": app_class.__doc__,
            },
        )
        _installed_classes[app_class] = installed
    return installed
