"""A metadata fragment's content as a digest that survives its re-serialisation. Pure, no I/O.

What we send is not what Preservica hands back byte for byte: pyPreservica parses our fragment and serialises it
again inside its MetadataContainer (entityAPI.py add_metadata/update_metadata: new `ns0:` prefixes), and the server
stores and answers it in its own form (inferred: no public source documents it; docs/deploy.md, facts to confirm).
So the digest is of the parsed tree: each element's namespace-qualified name, its attributes sorted, its text and
tail stripped of surrounding whitespace. Prefixes, attribute order, indentation, an XML declaration, CDATA or
character references, and comments change nothing; a changed word, element or attribute value does.
(C14N 2.0, ElementTree.canonicalize with strip_text and rewrite_prefixes, agrees on these cases; this form needs no
second serialisation of an element already parsed.)
"""
from __future__ import annotations

from typing import Any


def digest(element: Any) -> str:
    """SHA-256 (hex) of the canonical form of `element` and everything under it (not its own tail)."""
    import hashlib
    import json
    form = [[e.tag, sorted(e.attrib.items()), (e.text or "").strip(), "" if e is element else (e.tail or "").strip()]
            for e in element.iter() if isinstance(e.tag, str)]
    return hashlib.sha256(json.dumps(form, ensure_ascii=False).encode()).hexdigest()


def digest_xml(xml: str) -> str:
    """`digest` of a fragment as the app makes it (an XML string)."""
    import xml.etree.ElementTree as ET  # here: actions import this at cold start
    return digest(ET.fromstring(xml))
