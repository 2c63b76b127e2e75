"""`catalogue` action: attach the catalogue's record to the asset as a metadata fragment.

The asset's identifier of type CATALOGUE_IDENTIFIER_TYPE is looked up at CATALOGUE_URL_TEMPLATE;
the XML returned becomes the fragment with schema CATALOGUE_SCHEMA, replacing an existing
fragment of that schema (never a second one: clients.fragments), so a retry or a re-sent event changes nothing more;
never one edited since the app wrote it, nor one it did not write (unless it is the very record): `skipped`.
"""
from __future__ import annotations

from urllib.parse import quote

from ..clients import fragments, snapshot
from ..core.errors import FragmentKept
from ..pipeline.contract import APP, DONE, NEEDS, SKIPPED, Action, ActionError, Context, Job, Outcome, Setting

URL_TEMPLATE = Setting("CATALOGUE_URL_TEMPLATE", None, APP,
                       "Catalogue record URL, e.g. `https://catalogue.example.org/records/{identifier}`.")
IDENTIFIER_TYPE = Setting("CATALOGUE_IDENTIFIER_TYPE", "catalogue", APP,
                          "Identifier type whose value is looked up in the catalogue.")
SCHEMA = Setting("CATALOGUE_SCHEMA", None, APP, "Schema URI of the metadata fragment the `catalogue` action attaches.")
READS = frozenset({"summary", "identifiers"})  # the fragments already there, and the identifiers
# A record is one entity's description; a fragment is one XML document in Preservica's database (inferred: no
# documented limit), bounded as the transcript's and OCR's text is (core.transcript.MAX_FRAGMENT_CHARS).
MAX_RECORD_BYTES = 1024 * 1024


def perform(job: Job, ctx: Context) -> Outcome:
    template, schema = URL_TEMPLATE.value(), SCHEMA.value()  # required: the dispatcher skips the action without them
    return _enrich(ctx, job, template, schema)


def _enrich(ctx: Context, job: Job, template: str, schema: str) -> Outcome:
    id_type = IDENTIFIER_TYPE.value()
    snap = ctx.snapshot(job, READS)
    asset = snapshot.entity("IO", job.entity_ref, snap)
    values = sorted(v for t, v in snap.get("identifiers") or [] if t == id_type and v)
    if not values:
        return Outcome(SKIPPED, f"no {id_type!r} identifier")
    identifier = values[0]  # several: the same one every time
    if identifier.strip() in (".", ".."):  # quote() keeps dots: a dot segment would move the request up a path
        return Outcome(SKIPPED, f"{id_type!r} identifier is not usable in a URL",
                       {"catalogue_identifier": identifier[:10]})
    record = fetch(template, identifier, schema)
    if record is None:
        return Outcome(SKIPPED, "no catalogue record", {"catalogue_identifier": identifier})
    try:
        how = fragments.write(ctx.storage.blob_service(), ctx.secrets, job.entity_ref, schema, record, known=asset)
    except FragmentKept as exc:   # a person's edit (or a fragment not ours) stays
        return Outcome(SKIPPED, str(exc), {"catalogue_identifier": identifier, "catalogue_fragment": "kept"})
    return Outcome(DONE, "", {"catalogue_identifier": identifier, "catalogue_fragment": how})


def fetch(template: str, identifier: str, schema: str) -> str | None:
    """The record as an XML string, None on 404; ActionError (no URL in it) otherwise: not XML, not a document of
    `schema` (the fragment is written with schemaUri=schema), or larger than MAX_RECORD_BYTES as read or as it
    would be written (a DTD's entities expand below expat's own guard, which starts at 8 MiB)."""
    from ..clients import http
    try:
        url = template.format(identifier=quote(identifier, safe=""))
    except (KeyError, IndexError, ValueError):
        raise ActionError("CATALOGUE_URL_TEMPLATE must contain {identifier} and no other {field}") from None
    resp, body = http.get_bounded(url, MAX_RECORD_BYTES, peer="the catalogue", where="CATALOGUE_URL_TEMPLATE",
                                  headers={"Accept": "application/xml, text/xml"})
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise ActionError(f"the catalogue answered HTTP {resp.status_code}")
    content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "xml" not in content_type:
        raise ActionError(f"the catalogue answered {content_type!r}, not XML")
    if body is None:
        raise ActionError(f"the catalogue record is larger than {MAX_RECORD_BYTES} bytes; not written")
    import xml.etree.ElementTree as ET  # here, not at import: cold start
    try:
        root = ET.fromstring(body)  # bytes: the XML declaration's encoding is honoured
    except ET.ParseError:
        raise ActionError("the catalogue record is not well-formed XML") from None
    if not root.tag.startswith(f"{{{schema}}}"):
        name = root.tag if root.tag.startswith("{") else "{}" + root.tag
        raise ActionError(f"the catalogue record is not in CATALOGUE_SCHEMA (its root is {name[:200]}); not written")
    record = ET.tostring(root, encoding="unicode")
    if len(record.encode()) > MAX_RECORD_BYTES:
        raise ActionError(f"the catalogue record is larger than {MAX_RECORD_BYTES} bytes; not written")
    return record


ACTION = Action(name="catalogue", perform=perform, settings=(URL_TEMPLATE, IDENTIFIER_TYPE, SCHEMA),
                required=(URL_TEMPLATE, SCHEMA), secrets=(), preservica=NEEDS, reads=READS, repeatable=False,
                entities=("asset",), gone=Outcome(SKIPPED, "not found"))
