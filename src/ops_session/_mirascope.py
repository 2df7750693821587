"""One current session for ops-session and `mirascope.ops`, whichever package opened it.

`mirascope.ops` keeps its session in a ContextVar of its own, `SESSION_CONTEXT` in
`mirascope.ops._internal.session`; its `session()`, `current_session()`, spans, `inject_context`
and `propagated_context` all reach it through that module global. `share_sessions_with_mirascope`
puts `MirascopeSessions` in its place as soon as that module is imported, before or after
ops-session: a stand-in with the three ContextVar methods Mirascope calls, which keeps every
session in ops-session's own ContextVar. One variable means one current session, so nesting in
any order, exceptions, threads, asyncio tasks and reused workers behave as for either package
alone, and ops-session's middlewares pay nothing for it: Mirascope's code converts on read.

It also keeps the `ops_session` propagator that Mirascope's `ContextPropagator` would drop when it
replaces OpenTelemetry's global propagator with its own.

Nothing here imports Mirascope: an import hook waits for its modules. Stdlib only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from ._core import CARRIABLE_SESSION_ID, SessionContext, activate, current_session, deactivate

__all__ = ["MirascopeSessions", "share_sessions_with_mirascope"]

logger = logging.getLogger(__name__)

MIRASCOPE_SESSION_MODULE = "mirascope.ops._internal.session"
MIRASCOPE_PROPAGATION_MODULE = "mirascope.ops._internal.propagation"


class MirascopeSessions:
    """Stands in for Mirascope's session ContextVar, keeping its sessions in ops-session's.

    `set` turns the Mirascope `SessionContext` it is given into an ops-session one and makes it
    current; `get` gives Mirascope's code a Mirascope `SessionContext` for the current session,
    the very object its `session()` yielded when Mirascope opened it. An id that could not travel
    in a header (spaces, control or non-ASCII characters, over 1024 characters) is refused: the
    block runs without a current session, so neither package sends or logs it.
    """

    __slots__ = ("_original", "_view_class", "name")

    def __init__(self, original: ContextVar[Any], view_class: type[Any]) -> None:
        self._original = original
        self._view_class = view_class
        self.name = original.name

    def get(self, *default: Any) -> Any:
        current = current_session()
        if current is None:
            return None
        view = getattr(current, "_mirascope_view", None)
        if view is None:
            view = self._view_class(id=current.id, attributes=current.attributes)
            object.__setattr__(current, "_mirascope_view", view)
        return view

    def set(self, value: Any) -> Token[SessionContext | None]:
        return activate(None if value is None else _ops_session_for(value))

    def reset(self, token: Token[Any]) -> None:
        if token.var is self._original:  # set before ops-session was imported
            self._original.reset(token)
        else:
            deactivate(token)


_warned: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    """Warn the first time, then only at DEBUG: a hostile carrier can repeat it per request."""
    if kind in _warned:
        logger.debug(message)
    else:
        _warned.add(kind)
        logger.warning(message)


def _ops_session_for(view: Any) -> SessionContext | None:
    """The ops-session twin of a session Mirascope opened, or `None` for an id it refuses."""
    session_id = getattr(view, "id", None)
    if not isinstance(session_id, str) or CARRIABLE_SESSION_ID.fullmatch(session_id) is None:
        # The value itself is never logged: it may come from a hostile header.
        _warn_once(
            "id",
            "ops-session: mirascope.ops opened a session whose id cannot travel in a header "
            "(it must be 1 to 1024 printable ASCII characters without spaces); that block "
            "runs without a current session. Pass such ids through a UUID or a hash first.",
        )
        return None
    try:
        context = SessionContext(session_id, view.attributes)
    except (TypeError, ValueError) as error:
        _warn_once(
            "attributes",
            f"ops-session: mirascope.ops opened session {session_id} with attributes that are "
            f"not JSON-compatible ({error}); ops-session shares its id without them.",
        )
        context = SessionContext(session_id)
    object.__setattr__(context, "_mirascope_view", view)
    return context


def _share_session_variable(module: ModuleType) -> None:
    names = vars(module)
    if not isinstance(names["SESSION_CONTEXT"], MirascopeSessions):
        names["SESSION_CONTEXT"] = MirascopeSessions(
            names["SESSION_CONTEXT"], names["SessionContext"]
        )


def _keep_session_propagator(module: ModuleType) -> None:
    """Make Mirascope's `ContextPropagator` keep ours when it replaces the global propagator."""
    propagator_class = module.ContextPropagator
    replace_global = propagator_class.__init__
    if getattr(replace_global, "keeps_session_propagator", False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        from opentelemetry import propagate

        before = propagate.get_global_textmap()
        replace_global(self, *args, **kwargs)
        keep_dropped_session_propagator(before)

    __init__.keeps_session_propagator = True  # type: ignore[attr-defined]
    propagator_class.__init__ = __init__


def keep_dropped_session_propagator(before: Any) -> None:
    """Add back to the global propagator what replacing `before` dropped, if ours was in it.

    `OTEL_PROPAGATORS=tracecontext,baggage,ops_session` builds a composite propagator at start;
    Mirascope swaps it for a single format of its own on first use. When the `ops_session`
    propagator was among the dropped ones, the global becomes a composite of the new propagator
    and every dropped one that it does not already cover (so `baggage` stays too), and an INFO
    line says so. A user who never named `ops_session` keeps what Mirascope set.
    """
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator

    after = propagate.get_global_textmap()
    ours = sys.modules.get("ops_session._propagator")
    if after is before or ours is None:
        return  # without that module loaded, no SessionPropagator exists
    kept = {type(propagator) for propagator in _flattened(after)}
    dropped = [propagator for propagator in _flattened(before) if type(propagator) not in kept]
    if not any(isinstance(propagator, ours.SessionPropagator) for propagator in dropped):
        return
    propagate.set_global_textmap(CompositePropagator([after, *dropped]))
    logger.info(
        "ops-session: mirascope.ops replaced OpenTelemetry's global propagator; kept %s beside it.",
        ", ".join(type(propagator).__name__ for propagator in dropped),
    )


def _flattened(propagator: Any) -> list[Any]:
    members = getattr(propagator, "_propagators", None)  # CompositePropagator's list
    if members is None:
        return [propagator]
    return [inner for member in members for inner in _flattened(member)]


class _ThenLoader(Loader):
    """A module's own loader, followed by one call with the module it executed."""

    def __init__(self, loader: Loader, then: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._then(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, resource readers...
        return getattr(self._loader, name)


class AfterImport(MetaPathFinder):
    """Calls a function with each watched module right after its first import.

    It finds nothing itself: it asks the finders after it, and wraps the loader they return.
    """

    def __init__(self, watched: dict[str, Callable[[ModuleType], None]]) -> None:
        self._watched = watched

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        then = self._watched.get(fullname)
        if then is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenLoader(spec.loader, then)
                return spec
        return None

    def watch(self) -> None:
        """Run the function now for watched modules already imported, and wait for the others."""
        for name, then in self._watched.items():
            module = sys.modules.get(name)
            if module is not None:
                then(module)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


_mirascope_modules = AfterImport(
    {
        MIRASCOPE_SESSION_MODULE: _share_session_variable,
        MIRASCOPE_PROPAGATION_MODULE: _keep_session_propagator,
    }
)


def share_sessions_with_mirascope() -> None:
    """Share the current session with `mirascope.ops`, now or when the app imports it."""
    _mirascope_modules.watch()
