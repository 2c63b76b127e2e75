"""The metadata fragment `ocr` and `transcribe` write on an asset, without the text of a file that is not public.
Pure, no I/O.

Preservica's own public access (Universal Access) indexes an open asset's metadata for search and may show it
(inferred: docs/deploy.md, facts to confirm). So while the asset is public, the fragment holds neither the text nor
the name of a file whose content object's own security tag is not public: the provenance stays (service, model,
date, pages, language, duration) and `<textWithheld>` says why the text is not there. The private blob keeps the text
for staff and for `describe`.
"""
from __future__ import annotations

from typing import Any

ELEMENT = "textWithheld"
REASON = "a file it was read from is not public (its own security tag) while this asset is; kept privately for staff"


def found(root: Any, schema: str, name: str) -> Any:
    """Our <name xmlns=schema> element anywhere under `root` (a fragment, or the MetadataResponse holding it)."""
    return next(root.iter(f"{{{schema}}}{name}"), None)


def is_bare(element: Any, schema: str, drop: tuple[str, ...]) -> bool:
    """Whether the fragment already says its text is withheld and carries none of `drop`."""
    return element.find(f"{{{schema}}}{ELEMENT}") is not None and \
        not any(element.find(f"{{{schema}}}{name}") is not None for name in drop)


def bare(element: Any, schema: str, drop: tuple[str, ...]) -> str:
    """The fragment without the elements named in `drop` (the text, its cut mark, the file names), and with
    <textWithheld> saying why (its text: REASON). The element is changed in place."""
    import xml.etree.ElementTree as ET  # here: the action modules are imported at cold start
    for child in list(element):
        if child.tag in {f"{{{schema}}}{name}" for name in (*drop, ELEMENT)}:
            element.remove(child)
    ET.SubElement(element, f"{{{schema}}}{ELEMENT}").text = REASON
    return ET.tostring(element, encoding="unicode", default_namespace=schema)


def bare_xml(xml: str, schema: str, name: str, drop: tuple[str, ...]) -> str:
    """`bare` of a fragment the action has just made (its XML)."""
    import xml.etree.ElementTree as ET
    root = ET.fromstring(xml)
    element = found(root, schema, name)
    if element is None:
        raise ValueError(f"not a <{name}> fragment of {schema}")
    return bare(element, schema, drop)
