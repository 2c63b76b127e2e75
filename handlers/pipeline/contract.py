"""Everything an action may use from the framework, in one module: its declaration (Action, Secret,
Setting with APP/LOCAL), what it is given (Job, Context), what it returns (Outcome with DONE, SKIPPED or
GONE) and what it may raise (ActionError, NotFound). An action imports this module, handlers.core and
handlers.clients, never another action and never the rest of handlers.pipeline."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..clients.journal import DONE, GONE, SKIPPED, clip
from ..core.errors import ActionError, NotFound, SafeError, ServiceError, SettingsError
from ..core.messages import Job
from ..core.settings import APP, LOCAL, Setting

if TYPE_CHECKING:
    from ..clients.journal import Journal

__all__ = ["APP", "DONE", "GONE", "LOCAL", "NEEDS", "NO", "SKIPPED", "USES", "Action", "ActionError", "Context", "FanOut",
           "SafeError", "ServiceError", "SettingsError",
           "Job", "NotFound", "Outcome", "Secret", "Setting", "clip"]

# The entity types an action may accept (`entities=("asset",)`), by what Preservica's events call them.
ENTITIES = {"asset": "IO", "folder": "SO", "content object": "CO"}

# Whether an action calls Preservica: it cannot run without it / uses it when configured / never.
NEEDS, USES, NO = "needs", "uses", "no"


@dataclass
class Outcome:
    state: str                      # DONE / SKIPPED / GONE
    reason: str = ""
    extra: dict = field(default_factory=dict)  # more journal columns, e.g. where a thumbnail went


@dataclass(frozen=True)
class FanOut:
    """What a `fan_out` hook returns: the jobs that replace the action's jobs of one delivery page, the reason
    journaled for each event they no longer carry alone (row key -> reason; its state stays queued), and
    journal rows of their own (row key -> row), e.g. a digest's."""
    jobs: list[Job]
    reasons: dict[str, str] = field(default_factory=dict)
    rows: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Secret:
    """A secret an action needs: a Key Vault secret in Azure, a local setting on a developer machine."""
    vault_name: str
    local: Setting


@dataclass(frozen=True)
class Action:
    """The one declaration each action module makes, as `ACTION = Action(...)`. Every field but the
    hooks is required: a module that leaves one out fails at import, not silently at run time.

    settings:   every setting this action reads (the configuration table and Bicep come from these);
    required:   those that must be set for it to run (else the dispatcher journals `skipped: not configured`);
    secrets:    secrets that must be present, likewise;
    preservica: NEEDS, USES or NO: whether it calls Preservica (NEEDS adds Preservica's settings to `required`);
    reads:      which parts of the entity's Preservica snapshot it reads ("summary", "identifiers", "files"):
                the dispatcher reads the union once per event and the messages carry it;
    repeatable: running it twice leaves the same result and has no external effect, so it is not claimed.
    entities:   optional: the entity types it acts on ("asset", "folder", "content object"); for any other the
                runner journals `skipped: not an asset` (say) without calling `perform`. Unset: every type;
    gone:       optional: the outcome when `perform` raises NotFound (the entity was deleted), e.g.
                Outcome(SKIPPED, "not found"); unset, NotFound is a failure like any other error;
    fan_out:    optional dispatcher hook (jobs, delivery) -> FanOut | None, given the action's jobs of one
                delivery page, returning what replaces them (None: nothing), e.g. Teams' digest;
    settle:     optional runner hook (journal, job, outcome) -> journal rows to merge, after an outcome is recorded;
    batch_size: optional: most events one message of this action carries, below ACTION_BATCH_SIZE (an action
                whose event takes minutes, e.g. transcribe, must finish its message within functionTimeout);
    after:      optional: actions whose outcome for the same event this one waits for when they were routed
                for it, e.g. describe after ("ocr", "transcribe"): the runner puts the event back on the
                queue until they finish, ACTION_WAIT_SECONDS at most (pipeline/waits.py), and runs it once more
                when one it ran without finishes `done` later (pipeline/again.py).
    """
    name: str
    perform: Callable[[Job, Context], Outcome]
    settings: tuple[Setting, ...]
    required: tuple[Setting, ...]
    secrets: tuple[Secret, ...]
    preservica: str
    reads: frozenset[str] | Callable[[], frozenset[str]]   # a callable when a setting decides
    repeatable: bool
    entities: tuple[str, ...] | None = None
    gone: Outcome | None = None
    fan_out: Callable[..., FanOut | None] | None = None
    settle: Callable[..., Iterable[dict]] | None = None
    batch_size: int | None = None
    after: tuple[str, ...] = ()

    def __post_init__(self):
        if self.preservica not in (NEEDS, USES, NO):
            raise ValueError(f"action {self.name!r}: preservica must be NEEDS, USES or NO")
        from ..clients.snapshot import PARTS
        if not self.parts() <= PARTS:
            raise ValueError(f"action {self.name!r}: reads {sorted(self.parts() - PARTS)}; known: {sorted(PARTS)}")
        if self.entities is not None and not set(self.entities) <= ENTITIES.keys():
            raise ValueError(f"action {self.name!r}: entities must be among {sorted(ENTITIES)}")
        if not isinstance(self.after, tuple) or self.name in self.after:
            raise ValueError(f"action {self.name!r}: after must be a tuple of other actions' names")
        stray = [s.name for s in self.required if s not in self.settings]
        if stray:
            raise ValueError(f"action {self.name!r}: required settings not declared in settings: {stray}")

    def refuses(self, entity_type: str) -> str | None:
        """Why it does not act on this entity type (`not an asset`), None when it does."""
        if self.entities is None or entity_type in {ENTITIES[e] for e in self.entities}:
            return None
        return "not " + " or ".join(("an " if e[0] in "aeiou" else "a ") + e for e in self.entities)

    def parts(self) -> frozenset[str]:
        """The snapshot parts it reads now."""
        return self.reads() if callable(self.reads) else self.reads


class Context:
    """What an action may use; each piece is built on first use and shared by the process."""

    def __init__(self, env=None):
        self.env = os.environ if env is None else env

    @cached_property
    def secrets(self):
        from ..clients.secrets import default
        return default()

    @cached_property
    def storage(self):
        from ..clients.storage import default
        return default()

    @cached_property
    def journal(self) -> Journal:
        from ..clients.journal import default
        return default()

    def preservica(self, work):
        """Run `work(api)` with the process's pyPreservica client, failures classified (NotFound, ActionError)."""
        from ..clients import preservica
        return preservica.call(self.secrets, work)

    def snapshot(self, job: Job, parts: frozenset[str]) -> dict:
        """The entity as the dispatcher read it for this event, or read now when that snapshot lacks a
        part (or the action must see Preservica's current state and passes a part it never carries).
        A retried message reads afresh: its snapshot predates the first try, which may have acted
        (added a fragment, say) before its outcome was lost.
        {"gone": True} when the entity was deleted; {} for content objects."""
        from ..clients import snapshot
        if job.attempt == 1 and snapshot.covers(job.snapshot, parts):
            return job.snapshot or {}
        return self.preservica(lambda api: snapshot.take(api, job.entity_type, job.entity_ref, parts, job.event))

    def preservica_ready(self) -> bool:
        """For actions that USE Preservica when it is configured."""
        from ..core.settings import preservica_missing
        return not preservica_missing(self.secrets)

    def secret(self, secret: Secret) -> str | None:
        return self.secrets.get(secret.vault_name, secret.local.name)
