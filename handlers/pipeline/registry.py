"""The actions there are: every module or package in handlers/actions/, each declaring ACTION.

Everything else is read from those declarations: the queue functions (functions.py), what the
dispatcher may route to and whether an action is ready (`missing`), the settings table and the
Bicep contract tests (`all_settings`). Adding an action is adding a module (or package) there.
Action modules import nothing heavy at import time (their libraries load inside `perform`), so
finding them costs cold start nothing.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING

from ..clients.shared import Shared
from ..core import settings
from ..core.errors import DeclarationError as DeclarationError, SettingsError

if TYPE_CHECKING:
    from .contract import Action

PACKAGE = "handlers.actions"


def _load(name: str) -> Action:
    from .contract import Action  # with the first action: the contract pulls in the journal and messages
    module: ModuleType = importlib.import_module(f"{PACKAGE}.{name}")
    action = getattr(module, "ACTION", None)
    if not isinstance(action, Action):
        raise DeclarationError(f"{module.__name__} is in the actions package but declares no "
                               f"ACTION = contract.Action(...); an action's helpers go inside its own package")
    if action.name != name:
        raise DeclarationError(f"{module.__name__} declares the action {action.name!r}; the module and the "
                               f"action must have one name (it names the queue and the function)")
    return action


def module_names() -> tuple[str, ...]:
    """The actions' names from the package's listing alone, no action imported: enough to generate the
    functions at indexing (cold start); `_load` holds each module to that name when it is first used."""
    here = importlib.import_module(PACKAGE).__path__   # read now: tests add a folder to it
    return tuple(sorted(m.name for m in pkgutil.iter_modules(here)))


def _discover() -> dict[str, Action]:
    found = {name: _load(name) for name in module_names()}
    _check_order(found)
    return found


def _check_order(found: dict[str, Action]) -> None:
    """Every `after` names an action, and no action waits, through others, for itself."""
    for action in found.values():
        if unknown := [a for a in action.after if a not in found]:
            raise DeclarationError(f"action {action.name!r} runs after {unknown}: no such action")

    def upstream(name: str, seen: tuple[str, ...]) -> None:
        for a in found[name].after:
            if a in seen:
                raise DeclarationError(f"actions wait for each other: {' -> '.join((*seen, a))}")
            upstream(a, (*seen, a))
    for name in found:
        upstream(name, (name,))


_actions = Shared(_discover)


def actions() -> dict[str, Action]:
    return _actions.get()


def names() -> tuple[str, ...]:
    return tuple(actions())


def get(name: str) -> Action:
    return actions()[name]


def all_settings() -> tuple[settings.Setting, ...]:
    """Every app setting: the pipeline's, then each action's in name order."""
    found = list(settings.SETTINGS)
    for action in actions().values():
        found += [s for s in action.settings if s not in found]
    return tuple(found)


def missing(name: str, secrets, env=None) -> str | None:
    """None when the action can run, else what is missing (setting names, never values).
    Reads settings and (cached) secret presence only: cheap enough for every dispatch."""
    from .contract import NEEDS
    action = get(name)
    need: list[str] = settings.preservica_missing(secrets, env) if action.preservica == NEEDS else []
    need += [s.name for s in action.required if not s.value(env)]
    for secret in action.secrets:
        need += settings.secret_missing(secrets, secret.vault_name, secret.local.name)
    return ", ".join(need) or None


def routes(text: str | None = None):
    """PRESERVICA_ROUTES parsed against the actions there are. The app's own (no `text`) also raises the
    `routes-unsafe` alert signal, once per process and value, for routes that leave an asset (or a closed file's
    text in an opened asset's fragment) public after Preservica closes it: in Azure nobody runs `hookops settings
    --check` on the app settings."""
    from ..core import routing
    own = settings.get("PRESERVICA_ROUTES") if text is None else None
    found = routing.parse(own if text is None else text, names())
    if text is None and own not in _signalled:
        _signalled.add(own)
        unsafe = _unfollowed(found)
        if unsafe:
            from ..clients import telemetry
            telemetry.alert_signal("routes-unsafe", "; ".join(unsafe), problems=len(unsafe))
    return found


_signalled: set[str | None] = set()   # the routes values already checked in this process (one, unless tests change it)


def problems(env=None) -> list[str]:
    """Every setting value the app cannot use, each naming its setting (`hookops settings --check`,
    `hookops run`). Empty when all is well."""
    found = [p for s in all_settings() if (p := s.problem(env))]
    from ..core import reconcile
    for check in (lambda: routes(settings.get("PRESERVICA_ROUTES", env)),
                  lambda: reconcile.parse_types(settings.get("RECONCILE_EVENT_TYPES", env))):
        try:
            check()
        except SettingsError as exc:
            found.append(str(exc))
    try:
        found += _unfollowed(routes(settings.get("PRESERVICA_ROUTES", env)))
    except SettingsError:
        pass   # reported above
    private = {s.name: s.value(env) or "" for s in all_settings()
               if s.name.endswith("_CONTAINER") and s.name != "PUBLISH_CONTAINER"}
    for name, container in {**{c: c for c in settings.PRIVATE_CONTAINERS}, **private}.items():
        try:
            settings.refuse_public(container, env)
        except SettingsError as exc:
            found.append(f"{name}: {exc}")
    return found


# What an action that follows changes of access leaves public when it is routed, but not for one of them.
_FRAGMENT = ("a closed file's text in the fragment of an asset made public that way would stay there, where "
             "Preservica's public access may index it")
_LEFT = {"publish": "an asset closed or hidden that way would stay public until the public sweep",
         "ocr": _FRAGMENT, "transcribe": _FRAGMENT}


def _unfollowed(found) -> list[str]:
    """An action of _LEFT routed for some trigger but not for one that changes access (core.reconcile.ALWAYS):
    nothing runs it for that change (the reconciler's re-check runs it only where it is routed: reconcile.py)."""
    from ..core import reconcile
    return [f"PRESERVICA_ROUTES: {action} is routed, but not for {t}: {left}; route {action} for {t} too"
            for action, left in _LEFT.items() if action in found.all_actions()
            for t in sorted(reconcile.ALWAYS) if action not in found.actions_for(t)]
