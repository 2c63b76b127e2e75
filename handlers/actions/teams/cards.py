"""Adaptive Cards for a Teams Workflows webhook. Pure: data in, JSON-ready dicts out.

Not MessageCard (what pymsteams builds): Office 365 connectors are retired; Workflows take an
Adaptive Card wrapped in a `message` with one attachment.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

MAX_FILES = 20          # a card lists this many bitstreams, then "and N more"
MAX_TEXT = 1000         # description characters shown
MAX_KINDS = 10          # entity types a digest counts by name (Preservica has three)
# "The message size limit is 28 KB. When the size exceeds 28 KB, you receive an error" (learn.microsoft.com
# microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook). A Workflows flow is reported to
# answer 202 and drop such a card (inferred: one public receiver's note), so a card is cut to fit well under it,
# counted in the bytes httpx sends, not in characters.
MAX_CARD_BYTES = 24_000
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


def size(card: dict[str, Any]) -> int:
    """Bytes of the body httpx sends for `json=card` (httpx/_content.py encode_json: compact, UTF-8)."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))


def _fitted(build) -> dict[str, Any]:
    """`build(cut)` with its texts cut to 1/cut of their lengths, the first that fits MAX_CARD_BYTES."""
    for cut in (1, 4, 16):
        card = build(cut)
        if size(card) <= MAX_CARD_BYTES:
            return card
    return build(0)   # texts left out: only what the card is about


def indexed_card(title: str, description: str | None, ref: str, files: list[tuple[str, int | None]] | None,
                 link: str | None, file_count: int | None = None) -> dict[str, Any]:
    """FULL_TEXT_INDEXED: an asset finished ingest. `files` None: the file list is not shown (not read);
    `file_count`: how many there are when `files` holds only the first ones."""
    return _fitted(lambda cut: _indexed(title, description, ref, files, link, file_count, cut))


def _indexed(title, description, ref, files, link, file_count, cut: int) -> dict[str, Any]:
    def cut_to(text, limit):
        return _short(text, limit // cut) if cut else ""
    body = [_text("New asset in Preservica", size="Small", isSubtle=True),
            _text(cut_to(title, 200) or plain(ref), size="Large", weight="Bolder")]
    if description and cut:
        body.append(_text(cut_to(description, MAX_TEXT)))
    total = max(file_count or 0, len(files or ()))
    if files:
        facts = [{"title": cut_to(name, 120) or "…", "value": human_size(size)} for name, size in files[:MAX_FILES]]
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
    return _fitted(lambda cut: _digest(trigger, total, counts, titles, shown, cut))


def _digest(trigger, total, counts, titles, shown, cut: int) -> dict[str, Any]:
    kinds = sorted(counts.items())
    facts = [{"title": f"{KINDS.get(kind) or _short(kind, 40)} ({_short(kind, 40)})", "value": str(n)}
             for kind, n in kinds[:MAX_KINDS]]
    if len(kinds) > MAX_KINDS:
        facts.append({"title": "other types", "value": str(sum(n for _, n in kinds[MAX_KINDS:]))})
    body = [_text(f"Preservica {_short(trigger, 80)}: {total} events", size="Large", weight="Bolder"),
            {"type": "FactSet", "facts": facts}]
    if titles and cut:
        body.append(_text("\n".join(f"- {_short(t, 200 // cut)}" for t in titles)))
        if total > shown:
            body.append(_text(f"and {total - shown} more", isSubtle=True))
    return message(body)
