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

__all__ = ["install"]

AppT = TypeVar("AppT")

_MIDDLEWARE_ATTRIBUTE = "_ops_session_middleware"
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
    if _MIDDLEWARE_ATTRIBUTE in getattr(app, "__dict__", {}):
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
