"""Text from Preservica (a title, a description, an identifier, a reviewed fragment), from a model's answer or from an
operator's edit never changes a public manifest's structure and never reaches it as markup or invisible
reordering: whatever the text, the manifest parses to the same keys, holds no raw <, >, & or U+2028/2029 (inert when
a page inlines it), and each value is the text itself, or, when a IIIF client would take it for HTML (Presentation
3.0 §4.4: it starts with < and ends with >), that text escaped inside a <span>. Control and bidirectional control
characters are dropped (Unicode TR9; "Trojan Source", CVE-2021-42574). Pure: the manifest as iiif-prezi3 builds it."""
from __future__ import annotations

import html
import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from handlers.core import describe, iiif
from handlers.core.media import Media

REF = "3b1f8a52-5d0c-4c4e-9a49-0c1d2e3f4a5b"
BASE = "https://iiif.example.org/iiif"
HOSTILE = ['"}],"rights":"x', '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', "</span><b>",
           "a\u202egnp.exe", "\u2067evil\u2069", "line\u2028break", "\x1b]8;;https://evil.example\x1b\\", "\ud7ff&amp;"]
# What a reader must never get from a value: C0/C1 controls (but tab, line feed, carriage return) and bidi controls.
UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60),
                  st.lists(st.sampled_from(HOSTILE + ["<", ">", " ", "x"]), max_size=6).map("".join))


def build(title: str, description: str, identifier: str, statement: str) -> bytes:
    image = Media("image/png", "Image", 10, 10, None)
    return iiif.manifest(iiif.Asset(ref=REF, title=title, description=description, summary_language="en",
                                    identifiers=[("catalogue", identifier)],
                                    files=[iiif.File("files/a-1", image, title)], required_statement=statement), BASE)


def shown(value: str) -> str:
    """What a IIIF client shows of a value: HTML's text when it is HTML (§4.4), else the value."""
    if value.startswith("<") and value.endswith(">"):
        assert value.startswith("<span>") and value.endswith("</span>") and "<" not in value[6:-7], value
        return html.unescape(value[6:-7])
    return value


@settings(max_examples=300, deadline=None)
@given(title=texts, description=texts, identifier=texts, statement=texts)
def test_no_text_changes_the_manifests_structure_or_reaches_it_as_markup(title, description, identifier, statement):
    raw = build(title, description, identifier, statement)
    for forbidden in (b"<", b">", b"&", "\u2028".encode(), "\u2029".encode()):
        assert forbidden not in raw
    doc = json.loads(raw)
    assert set(doc) <= {"@context", "id", "type", "label", "summary", "metadata", "requiredStatement", "thumbnail",
                        "items"} and doc["id"] == f"{BASE}/{REF}/manifest.json" and "rights" not in doc
    values = [(title or REF, doc["label"]["none"][0]), (title or "1", doc["items"][0]["label"]["none"][0])]
    for key, given_text, value in (("metadata", identifier, lambda d: d["metadata"][0]["value"]["none"][0]),
                                   ("requiredStatement", statement, lambda d: d["requiredStatement"]["value"]["none"][0]),
                                   ("summary", description, lambda d: d["summary"]["en"][0])):
        assert (key in doc) == bool(given_text)   # an empty text leaves its property out, nothing else
        if given_text:
            values.append((given_text, value(doc)))
    for given_text, value in values:
        text = shown(value)
        assert not UNSAFE.search(text), repr(value)
        assert text == UNSAFE.sub("", given_text).strip()[:len(text)], (given_text, value)


@pytest.mark.parametrize("answer", ["A letter of \u2067the Harbour Office\u2069, 1921.",   # isolates
                                    "A letter of the Harbour Office\u061c, 1921.",          # Arabic letter mark
                                    "A letter of the Harbour Office\x85, 1921."])           # C1 next line
def test_a_draft_or_an_operators_edit_with_bidi_or_c1_controls_is_refused(answer):
    """describe's answer and the console's accepted text pass the same check (core.describe.check)."""
    assert describe.check(answer, 1500, "en", "nonce") == "control or invisible characters"
