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
from typing import Any, TypeVar

from .asgi import SessionMiddleware
from .wsgi import SessionMiddleware as WSGISessionMiddleware

__all__ = ["install", "install_automatically"]

AppT = TypeVar("AppT")

_MIDDLEWARE_ATTRIBUTE = "_ops_session_middleware"
_AUTOMATIC_ATTRIBUTE = "_ops_session_automatic"
_installed_classes: dict[type[Any], type[Any]] = {}


async def _asgi_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
    await self.__dict__[_MIDDLEWARE_ATTRIBUTE](scope, receive, send)


def _wsgi_call(self: Any, environ: Any, start_response: Any) -> Any:
    return self.__dict__[_MIDDLEWARE_ATTRIBUTE](environ, start_response)


def install(app: AppT, **options: Any) -> AppT:
    """Run every request of a Starlette, FastAPI or Flask app in a session, outermost.

    Takes the options of `SessionMiddleware` (`header_name`, `generator`, `attributes`, ...),
    checks them now, so that a bad one stops the app at import, and returns the same `app`.

    Example:
        app = install(FastAPI())

    Raises:
        TypeError: `app` is not a Starlette, FastAPI or Flask application, or an option is bad.
        ValueError: An option has a bad value.
        RuntimeError: The app already runs a session middleware (`install` or `add_middleware`).
    """
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
        for layer in getattr(app, "user_middleware", ()):
            if layer.cls is SessionMiddleware:
                raise RuntimeError(
                    f"{app!r} already has SessionMiddleware from add_middleware(); keep one: "
                    "remove that call, or do not call install()."
                )
        middleware = SessionMiddleware(MethodType(app_class.__call__, app), **options)
    elif kind == "wsgi":
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

    Whether it does is known only once the app is set up, so the first call decides: an app with
    `SessionMiddleware` among its `add_middleware` layers, or a `WSGISessionMiddleware` in its
    `wsgi_app` chain, is left to that layer. A later `install(app)` replaces this one.
    """
    if _MIDDLEWARE_ATTRIBUTE in app.__dict__ or _kind(type(app)) is None:
        return
    install(app, **options)
    ours = app.__dict__[_MIDDLEWARE_ATTRIBUTE]
    bare = ours.app  # the app's own call
    if _kind(type(app)) == "asgi":

        async def first_asgi_call(scope: Any, receive: Any, send: Any) -> None:
            layers = getattr(app, "user_middleware", ())
            chosen = bare if any(layer.cls is SessionMiddleware for layer in layers) else ours
            app.__dict__[_MIDDLEWARE_ATTRIBUTE] = chosen
            await chosen(scope, receive, send)

        app.__dict__[_MIDDLEWARE_ATTRIBUTE] = first_asgi_call
    else:

        def first_wsgi_call(environ: Any, start_response: Any) -> Any:
            chosen = bare if _wraps_a_session_layer(app.wsgi_app) else ours
            app.__dict__[_MIDDLEWARE_ATTRIBUTE] = chosen
            return chosen(environ, start_response)

        app.__dict__[_MIDDLEWARE_ATTRIBUTE] = first_wsgi_call
    app.__dict__[_AUTOMATIC_ATTRIBUTE] = True


def _wraps_a_session_layer(wsgi_app: Any) -> bool:
    # WSGI middleware keeps the app it wraps as `.app` (werkzeug, OpenTelemetry, ours).
    while wsgi_app is not None:
        if isinstance(wsgi_app, WSGISessionMiddleware):
            return True
        wsgi_app = getattr(wsgi_app, "app", None)
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
