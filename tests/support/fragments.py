"""What the Preservica double holds of the one fragment `ocr` or `transcribe` writes on an asset, and whether its
text was withheld (a file read is not public under a public asset: clients/fragment_text.py)."""
from __future__ import annotations

import xml.etree.ElementTree as ET


def fragment_xml(pres, ref: str, schema: str) -> str:
    [(found, xml)] = pres.metadata(ref)
    assert found == schema
    return xml


def withheld(xml: str, schema: str) -> bool:
    """The fragment says `textWithheld` and holds no `text` element."""
    doc = ET.fromstring(xml)
    return doc.find(f"{{{schema}}}textWithheld") is not None and doc.find(f"{{{schema}}}text") is None


def with_closed_master(pres, ref: str, title: str, bitstreams) -> str:
    """An open asset whose preservation file is closed on its own (the fallback `ocr` and `transcribe` read)."""
    pres.add_asset(ref, title, bitstreams=bitstreams)
    co, _ = pres.source_of(ref, "Preservation", 0)
    pres.set_security_tag(co, "closed")
    return ref
