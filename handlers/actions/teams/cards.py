"""Adaptive Cards for a Teams Workflows webhook. Pure: data in, JSON-ready dicts out.

Not MessageCard (what pymsteams builds): Office 365 connectors are retired; Workflows take an
Adaptive Card wrapped in a `message` with one attachment.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_FILES = 20          # a card lists this many bitstreams, then "and N more"
MAX_TEXT = 1000         # description characters shown (Teams refuses cards over ~28 KB)
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
KINDS = {"IO": "Assets", "SO": "Folders", "CO": "Content objects"}


def message(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    content = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    if actions:
        content["actions"] = actions
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}]}


def human_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # unreachable


_INLINE = re.compile(r"([\\`*_\[\]<>~|])")                  # emphasis, code, links, images, autolinks, tables
_LINE_START = re.compile(r"^([ \t]*)([#+\-=>]|\d+(?=[.)]))", re.M)  # headings, lists, rules, quotes


def plain(text: str | None) -> str:
    """Sender- or Preservica-supplied text as literal card text: TextBlocks and Facts render markdown,
    so `[re-enter your password](https://evil.example)` would become a link. Markdown is backslash-
    escaped (CommonMark; inline characters everywhere, block markers at a line's start), control
    characters dropped, and `://` broken with a zero-width space so Teams does not link a bare URL."""
    text = "".join(c for c in (text or "") if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    text = _LINE_START.sub(lambda m: m[1] + ("\\" + m[2] if not m[2][0].isdigit() else m[2] + "\\"),
                           _INLINE.sub(r"\\\1", text))
    return text.replace("://", ":\u200b//")


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _short(text: str | None, limit: int = MAX_TEXT) -> str:
    """Shortened, then made plain (escaping after cutting, so no escape is cut in half)."""
    text = (text or "").strip()
    return plain(text if len(text) <= limit else text[: limit - 1] + "…")


def _open(url: str | None, title: str = "Open in Preservica") -> list[dict[str, Any]]:
    return [{"type": "Action.OpenUrl", "title": title, "url": url}] if url else []


def indexed_card(title: str, description: str | None, ref: str, files: list[tuple[str, int | None]] | None,
                 link: str | None, file_count: int | None = None) -> dict[str, Any]:
    """FULL_TEXT_INDEXED: an asset finished ingest. `files` None: the file list is not shown (not read);
    `file_count`: how many there are when `files` holds only the first ones."""
    body = [_text("New asset in Preservica", size="Small", isSubtle=True),
            _text(_short(title, 200) or plain(ref), size="Large", weight="Bolder")]
    if description:
        body.append(_text(_short(description)))
    total = max(file_count or 0, len(files or ()))
    if files:
        facts = [{"title": _short(name, 120), "value": human_size(size)} for name, size in files[:MAX_FILES]]
        body.append({"type": "FactSet", "facts": facts})
        if total > min(len(files), MAX_FILES):
            body.append(_text(f"and {total - min(len(files), MAX_FILES)} more file(s)", isSubtle=True))
    elif files is not None:
        body.append(_text("No files listed.", isSubtle=True))
    body.append(_text(f"Reference: {plain(ref)}", size="Small", isSubtle=True))
    return message(body, _open(link))


def alert_card(trigger: str, entity_type: str, ref: str, tenant: str, timestamp: str, link: str | None) -> dict[str, Any]:
    """INGEST_FAILED: someone should look."""
    body = [{"type": "Container", "style": "attention", "items": [
                _text("⚠ Ingest failed in Preservica", size="Large", weight="Bolder", color="Attention")]},
            {"type": "FactSet", "facts": [
                {"title": "Entity", "value": f"{_short(entity_type, 40) or '?'} {plain(ref) or '?'}"},
                {"title": "Tenant", "value": _short(tenant, 200) or "?"},
                {"title": "When", "value": _short(timestamp, 80) or "?"},
                {"title": "Trigger", "value": _short(trigger, 80)}]}]
    return message(body, _open(link))


def line_card(trigger: str, entity_type: str, ref: str, link: str | None) -> dict[str, Any]:
    """Any other trigger: one line naming the trigger and the entity."""
    return message([_text(f"Preservica {_short(trigger, 80)}: {_short(entity_type, 40) or '?'} {plain(ref) or '?'}")],
                   _open(link))


def digest_card(trigger: str, total: int, counts: dict[str, int], titles: list[str], shown: int) -> dict[str, Any]:
    """Many events in one delivery: counts and the first few names instead of a flood of cards."""
    body = [_text(f"Preservica {_short(trigger, 80)}: {total} events", size="Large", weight="Bolder"),
            {"type": "FactSet", "facts": [{"title": f"{KINDS.get(kind) or _short(kind, 40)} ({_short(kind, 40)})",
                                           "value": str(n)} for kind, n in sorted(counts.items())]}]
    if titles:
        body.append(_text("\n".join(f"- {_short(t, 200)}" for t in titles)))
        if total > shown:
            body.append(_text(f"and {total - shown} more", isSubtle=True))
    return message(body)
