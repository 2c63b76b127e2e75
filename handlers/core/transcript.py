"""What a transcription becomes: WebVTT captions, plain text and the metadata fragment. Pure.

Everything here comes from speech recognition of archive media, so it is untrusted text: a phrase
may "say" `-->`, `<script>`, a blank line or control characters. Cue text is escaped as WebVTT
requires (& < > as character references: `-->` becomes `--&gt;`, no cue can be ended or
timed by its text) and each cue is one line; XML gets only characters XML 1.0 allows.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

# XML 1.0 forbids most C0 controls, lone surrogates (JSON may escape one: "\ud800") and U+FFFE/U+FFFF, and
# ElementTree would write them anyway; WebVTT lines must not hold line breaks. Both drop these, and line and
# paragraph separators too.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff\u2028\u2029]")
_SPACE = re.compile(r"\s+")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
MAX_FRAGMENT_CHARS = 1_000_000  # a fragment is one XML document in Preservica's database; keep it bounded


@dataclass(frozen=True)
class Phrase:
    start_ms: int
    duration_ms: int
    text: str
    locale: str = ""


def clean(text: str) -> str:
    """One line of text: control characters out, any run of whitespace (newlines too) one space."""
    return _SPACE.sub(" ", _CONTROL.sub("", text or "")).strip()


def timestamp(ms: int) -> str:
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def cue_text(text: str) -> str:
    """Cue payload as WebVTT requires: & < > escaped (so `-->` and tags are just text), one line."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(phrases: list[Phrase]) -> str:
    """WebVTT captions, one cue per recognised phrase, in time order; empty phrases are left out."""
    cues: list[str] = []
    for p in sorted(phrases, key=lambda p: p.start_ms):
        payload = cue_text(p.text)
        if not payload:
            continue
        end = p.start_ms + max(1, p.duration_ms)
        cues.append(f"{len(cues) + 1}\n{timestamp(p.start_ms)} --> {timestamp(end)}\n{payload}\n")
    return "WEBVTT\n\n" + "\n".join(cues)


def plain_text(phrases: list[Phrase]) -> str:
    """The transcript as plain text: one phrase a line, in time order."""
    lines = [clean(p.text) for p in sorted(phrases, key=lambda p: p.start_ms)]
    return "\n".join(line for line in lines if line) + "\n"


def is_locale(value: str) -> bool:
    return bool(_LOCALE.fullmatch(value or ""))


def language(phrases: list[Phrase], locales: list[str]) -> str:
    """The locale most of the speech is in (by duration); with one candidate locale, that one; else `und`."""
    spoken: Counter[str] = Counter()
    for p in phrases:
        if is_locale(p.locale):
            spoken[p.locale] += max(1, p.duration_ms)
    if spoken:
        return spoken.most_common(1)[0][0]
    return locales[0] if len(locales) == 1 else "und"


def fragment(schema: str, text: str, lang: str, source: str, duration_ms: int) -> str:
    """The metadata fragment: <transcript xmlns=SCHEMA> with language, source bitstream, duration, text
    (cut at MAX_FRAGMENT_CHARS, with <truncated>true</truncated>).
    ElementTree escapes the text; characters XML cannot hold are removed first."""
    import xml.etree.ElementTree as ET  # here: the action module is imported at cold start
    root = ET.Element(f"{{{schema}}}transcript")
    body = _CONTROL.sub("", text)
    for name, value in (("language", lang), ("source", clean(source)), ("durationMilliseconds", str(int(duration_ms)))):
        ET.SubElement(root, f"{{{schema}}}{name}").text = value
    if len(body) > MAX_FRAGMENT_CHARS:
        ET.SubElement(root, f"{{{schema}}}truncated").text = "true"  # the whole text is in Blob (.txt)
    ET.SubElement(root, f"{{{schema}}}text").text = body[:MAX_FRAGMENT_CHARS]
    return ET.tostring(root, encoding="unicode", default_namespace=schema)


# ---- which file a transcript was made from ----------------------------------------------------
# `transcribe` writes these as the metadata of its `<ref>.vtt`/`<ref>.txt` blobs; `publish` attaches
# captions only to a file it publishes whose content object and fixity are the ones recorded here
# (a transcript of the preservation master must never follow an unrelated access image to the public).

def fixity_text(fixity: dict[str, Any] | None) -> str:
    """A bitstream's fixity values as one comparable string: `ALG:value;...`, sorted, bounded."""
    return ";".join(f"{k}:{v}" for k, v in sorted((fixity or {}).items()))[:256]


def source_metadata(representation: str, content_object: str, fixity: dict[str, Any] | None) -> dict[str, str]:
    """Blob metadata naming what was transcribed: representation type, content object ref, fixity."""
    return {"source_representation": representation, "source_content_object": content_object,
            "source_fixity": fixity_text(fixity)}


def same_source(metadata: dict[str, Any] | None, content_object: str, fixity: dict[str, Any] | None) -> bool:
    """Whether a transcript's blob metadata says it was made from this content object with this fixity.
    A transcript with no record (made before this was recorded) matches nothing."""
    md = metadata or {}
    recorded = md.get("source_fixity", "")
    return bool(recorded) and md.get("source_content_object") == content_object and recorded == fixity_text(fixity)
