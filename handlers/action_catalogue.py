"""`catalogue` action: attach the catalogue's record to the asset as a metadata fragment.

The asset's identifier of type CATALOGUE_IDENTIFIER_TYPE is looked up at CATALOGUE_URL_TEMPLATE;
the XML returned becomes the fragment with schema CATALOGUE_SCHEMA, replacing an existing
fragment of that schema (never a second one), so a retry or a re-sent event changes nothing more.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx

from . import httpclient, journal, preservica, settings
from .action_runner import ActionError, Context, Outcome
from .envelope import Job


def perform(job: Job, ctx: Context) -> Outcome:
    if job.entity_type != "IO":
        return Outcome(journal.SKIPPED, "not an asset")
    template, schema = settings.get("CATALOGUE_URL_TEMPLATE"), settings.get("CATALOGUE_SCHEMA")
    if not (template and schema):
        raise ActionError("the catalogue is not configured: set CATALOGUE_URL_TEMPLATE and CATALOGUE_SCHEMA")
    try:
        return preservica.call(ctx, lambda api: _enrich(api, job, template, schema))
    except preservica.NotFound:
        return Outcome(journal.SKIPPED, "not found")


def _enrich(api, job: Job, template: str, schema: str) -> Outcome:
    id_type = settings.get("CATALOGUE_IDENTIFIER_TYPE")
    asset = api.asset(job.entity_ref)
    values = sorted(v for t, v in api.identifiers_for_entity(asset) if t == id_type and v)
    if not values:
        return Outcome(journal.SKIPPED, f"no {id_type!r} identifier")
    identifier = values[0]  # several: the same one every time
    if identifier.strip() in (".", ".."):  # quote() keeps dots: a dot segment would move the request up a path
        return Outcome(journal.SKIPPED, f"{id_type!r} identifier is not usable in a URL", {"catalogue_identifier": identifier[:10]})
    record = fetch(template, identifier)
    if record is None:
        return Outcome(journal.SKIPPED, "no catalogue record", {"catalogue_identifier": identifier})
    if schema in asset.metadata.values():
        api.update_metadata(asset, schema, record)
        how = "replaced"
    else:
        api.add_metadata(asset, schema, record)
        how = "added"
    return Outcome(journal.DONE, "", {"catalogue_identifier": identifier, "catalogue_fragment": how})


def fetch(template: str, identifier: str) -> str | None:
    """The record as an XML string, None on 404; ActionError (no URL in it) otherwise."""
    try:
        url = template.format(identifier=quote(identifier, safe=""))
    except (KeyError, IndexError, ValueError):
        raise ActionError("CATALOGUE_URL_TEMPLATE must contain {identifier} and no other {field}") from None
    try:
        resp = httpclient.client().get(url, headers={"Accept": "application/xml, text/xml"})
    except httpx.InvalidURL:
        raise ActionError("CATALOGUE_URL_TEMPLATE does not make a valid URL") from None
    except httpx.HTTPError as exc:
        raise ActionError(f"the catalogue could not be reached: {type(exc).__name__}") from None
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise ActionError(f"the catalogue answered HTTP {resp.status_code}")
    content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "xml" not in content_type:
        raise ActionError(f"the catalogue answered {content_type!r}, not XML")
    try:
        root = ET.fromstring(resp.content)  # bytes: the XML declaration's encoding is honoured
    except ET.ParseError:
        raise ActionError("the catalogue record is not well-formed XML") from None
    return ET.tostring(root, encoding="unicode")
