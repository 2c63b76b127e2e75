"""What an action is: its declaration (Action), what it returns (Outcome), what it may raise
(ActionError, NotFound) and what it may use (Context)."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..clients.journal import DONE, GONE, SKIPPED, clip  # noqa: F401 (part of the contract)
from ..core.errors import ActionError, NotFound  # noqa: F401 (part of the contract)
from ..core.messages import Job  # noqa: F401 (part of the contract)
from ..core.settings import APP, LOCAL, Setting  # noqa: F401 (part of the contract)

if TYPE_CHECKING:
    from ..clients.journal import Journal

# Whether an action calls Preservica: it cannot run without it / uses it when configured / never.
NEEDS, USES, NO = "needs", "uses", "no"


@dataclass
class Outcome:
    state: str                      # journal.DONE / SKIPPED / GONE
    reason: str = ""
    extra: dict = field(default_factory=dict)  # more journal columns, e.g. where a thumbnail went


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
    fan_out:    optional dispatcher hook (jobs, delivery, did, pk, prefix, rows) -> jobs, e.g. Teams' digest;
    settle:     optional runner hook (journal, job, outcome) after an outcome is recorded;
    batch_size: optional: most events one message of this action carries, below ACTION_BATCH_SIZE (an action
                whose event takes minutes, e.g. transcribe, must finish its message within functionTimeout).
    """
    name: str
    perform: Callable[[Job, Context], Outcome]
    settings: tuple[Setting, ...]
    required: tuple[Setting, ...]
    secrets: tuple[Secret, ...]
    preservica: str
    reads: frozenset[str] | Callable[[], frozenset[str]]   # a callable when a setting decides
    repeatable: bool
    fan_out: Callable | None = None
    settle: Callable | None = None
    batch_size: int | None = None

    def __post_init__(self):
        if self.preservica not in (NEEDS, USES, NO):
            raise ValueError(f"action {self.name!r}: preservica must be NEEDS, USES or NO")
        from ..clients.snapshot import PARTS
        if not self.parts() <= PARTS:
            raise ValueError(f"action {self.name!r}: reads {sorted(self.parts() - PARTS)}; known: {sorted(PARTS)}")
        stray = [s.name for s in self.required if s not in self.settings]
        if stray:
            raise ValueError(f"action {self.name!r}: required settings not declared in settings: {stray}")


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
