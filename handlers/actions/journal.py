"""`journal` action: complete the event's record with the event as Preservica sent it."""
from __future__ import annotations

import json

from ..pipeline.contract import DONE, NO, Action, Context, Job, Outcome

_MAX_COLUMN = 30000  # a Table string property holds 64 KiB of UTF-16


def perform(job: Job, ctx: Context) -> Outcome:
    event = json.dumps(job.event, ensure_ascii=False, separators=(",", ":"))
    identifiers = json.dumps(job.event.get("identifiers") or [], ensure_ascii=False, separators=(",", ":"))
    extra = {"eventJson": event[:_MAX_COLUMN], "identifiers": identifiers[:_MAX_COLUMN]}
    return Outcome(DONE, "", extra)


ACTION = Action(name="journal", perform=perform, settings=(), required=(), secrets=(), preservica=NO,
                reads=frozenset(), repeatable=True)  # merging the same columns again changes nothing
