"""PRESERVICA_ROUTES: which actions run for which trigger. Pure, no I/O.

Syntax: `TRIGGER=action,action;TRIGGER=action;*=action`. A trigger's own entry wins over `*`;
a trigger with neither gets no actions (its events are still recorded by the dispatcher).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RoutesError as RoutesError

# Preservica's trigger names (what deliveries carry and subscriptions take), each with pyPreservica's
# `TriggerType` member for it (pyPreservica webHooksAPI.py): the one trigger table of the app and its CLI.
SDK_TRIGGERS = {"FULL_TEXT_INDEXED": "INDEXED", "MOVED": "MOVED", "CHANGED_SECURITY_DESCRIPTOR": "SECURITY_CHANGED",
                "INGEST_FAILED": "INGEST_FAILED", "CHANGE_ASSET_VISIBILITY": "CHANGE_ASSET_VISIBILITY"}
TRIGGERS = tuple(SDK_TRIGGERS)
_SDK_ALIASES = {sdk: name for name, sdk in SDK_TRIGGERS.items() if sdk != name}


def trigger_name(value: str | None) -> str | None:
    """A trigger as deliveries name it, from what a person may type (any case, or the SDK's name); None if unknown."""
    name = (value or "").strip().upper()
    name = _SDK_ALIASES.get(name, name)
    return name if name in SDK_TRIGGERS else None
WILDCARD = "*"
DEFAULT_ROUTES = "*=journal"


@dataclass(frozen=True)
class Routes:
    table: Mapping[str, tuple[str, ...]]
    known: tuple[str, ...] = ()

    def actions_for(self, trigger: str | None) -> tuple[str, ...]:
        key = (trigger or "").strip().upper()
        if key in self.table:
            return self.table[key]
        return self.table.get(WILDCARD, ())

    def all_actions(self) -> tuple[str, ...]:
        seen = {a for actions in self.table.values() for a in actions}
        return tuple(a for a in self.known if a in seen)


def parse(text: str | None, known: tuple[str, ...] | None) -> Routes:
    """Parse the setting against the `known` action names; raise RoutesError naming the first wrong token.
    `known=None` takes any action name: for an action asking what else runs for its trigger (the dispatcher
    checked the names against the actions there are before it queued the event)."""
    if text is None or not text.strip():
        text = DEFAULT_ROUTES
    table: dict[str, tuple[str, ...]] = {}
    for entry in text.split(";"):
        if not entry.strip():
            continue  # tolerate a trailing ';'
        trigger, sep, names = entry.partition("=")
        trigger = trigger.strip().upper()
        if not sep:
            raise RoutesError(f"PRESERVICA_ROUTES: {entry.strip()!r} is not TRIGGER=action[,action...]")
        if trigger != WILDCARD and trigger not in TRIGGERS:
            raise RoutesError(f"PRESERVICA_ROUTES: unknown trigger {trigger!r}; "
                              f"known: {', '.join(TRIGGERS)} or *")
        if trigger in table:
            raise RoutesError(f"PRESERVICA_ROUTES: trigger {trigger!r} is listed twice")
        actions: list[str] = []
        for name in names.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if known is not None and name not in known:
                raise RoutesError(f"PRESERVICA_ROUTES: unknown action {name!r} for {trigger}; "
                                  f"known: {', '.join(known)}")
            if name not in actions:
                actions.append(name)
        if not actions:
            raise RoutesError(f"PRESERVICA_ROUTES: trigger {trigger!r} has no actions")
        table[trigger] = tuple(actions)
    return Routes(table, tuple(known or ()))
