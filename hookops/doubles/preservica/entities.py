"""The entity part of the Preservica double's REST API: entities, identifiers, metadata fragments,
representations -> content objects -> generations -> bitstreams, and thumbnails."""
from __future__ import annotations

import hashlib
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from ..base import Reply
from .model import (
    KINDS,
    MAX_CONTENT_BYTES,
    PATHS,
    TAGS,
    THUMBNAIL_SIZES,
    Entity,
    image_type,
    not_found,
    text_reply,
    xml_reply,
)
from .streamed import format_xml, streamed_digest, streamed_reply


class EntityApi:
    """Route handlers of PreservicaDouble (a mixin): every later hop is an absolute URL built from
    the request's Host, as Preservica gives them. Uses the double's ``_entities``, ``_base`` (set
    for each request), ``entity_ns`` and ``xip_ns``.

    Each shape is what a pyPreservica 4.2 entityAPI.py function parses (named at each handler); the
    texts and content types of errors (404 "... not found", 400 reasons) are inferred: the SDK reads
    only the status of a failure."""
    _entities: dict[str, Entity]
    _base: str
    entity_ns: str
    xip_ns: str
    fixity_algorithms: tuple[str, ...] = ("SHA1",)   # what each bitstream's Fixities lists, in Preservica's names

    # entities ----------------------------------------------------------------------------------
    def _find(self, path_kind: str, ref: str) -> Entity | None:
        entity = self._entities.get(ref)
        return entity if entity and entity.kind == KINDS[path_kind] else None

    def _url(self, entity: Entity, tail: str = "") -> str:
        return f"{self._base}/api/entity/{PATHS[entity.kind]}/{entity.ref}{tail}"

    def _entity(self, request, query, path_kind, ref):
        # entityAPI.py entity(): EntityResponse, xip:<Kind> with Ref/Title/Description/SecurityTag/Parent,
        # AdditionalInformation links (Self, Identifiers, Metadata/Fragment@schema, Representations, Generations).
        e = self._find(path_kind, ref)
        if e is None:
            return not_found(ref)
        tag = TAGS[e.kind]
        fields = f"<xip:Ref>{e.ref}</xip:Ref><xip:Title>{escape(e.title)}</xip:Title>"
        if e.description:
            fields += f"<xip:Description>{escape(e.description)}</xip:Description>"
        fields += f"<xip:SecurityTag>{escape(e.security_tag)}</xip:SecurityTag>"
        if e.parent:   # a content object's is its asset (pyPreservica reads the first <xip:Parent>)
            fields += f"<xip:Parent>{escape(e.parent)}</xip:Parent>"
        if e.hidden:   # inferred: no public source shows how a hidden asset appears (see core.iiif.is_hidden)
            fields += "<xip:Hidden>true</xip:Hidden>"
        extra = f"<Self>{self._url(e)}</Self><Identifiers>{self._url(e, '/identifiers')}</Identifiers>"
        if e.parent:
            parent = self._entities.get(e.parent)
            extra += f"<Parent>{escape(self._url(parent) if parent else e.parent)}</Parent>"
        if e.metadata:
            extra += "<Metadata>" + "".join(
                f"<Fragment schema={quoteattr(schema)}>{self._url(e, '/metadata/' + mref)}</Fragment>"
                for mref, (schema, _) in e.metadata.items()) + "</Metadata>"
        if e.kind == "IO":
            extra += f"<Representations>{self._url(e, '/representations')}</Representations>"
        if e.kind == "CO":
            extra += f"<Generations>{self._url(e, '/generations')}</Generations>"
        return self._doc("EntityResponse", f"<xip:{tag}>{fields}</xip:{tag}>"
                                           f"<AdditionalInformation>{extra}</AdditionalInformation>")

    def _save(self, request, query, path_kind, ref):
        # entityAPI.py save(): PUT of <InformationObject xmlns=XIP> with Ref, Title, Description (the security
        # tag and parent are not saved by it); answered with the entity, as GET answers.
        e = self._find(path_kind, ref)
        if e is None:
            return not_found(ref)
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError as exc:
            return text_reply(400, f"malformed XML: {exc}")
        if root.findtext(f"{{{self.xip_ns}}}Ref") != ref:
            return text_reply(400, "Ref does not match the URL")
        e.title = root.findtext(f"{{{self.xip_ns}}}Title") or e.title
        e.description = root.findtext(f"{{{self.xip_ns}}}Description") or ""
        self.saved.append((ref, e.title, e.description))
        return self._entity(request, query, path_kind, ref)

    def _identifiers(self, request, query, path_kind, ref):
        # entityAPI.py identifiers_for_entity(): Identifiers/xip:Identifier (ApiId, Type, Value), TotalResults.
        e = self._find(path_kind, ref)
        if e is None:
            return not_found(ref)
        items = "".join(f"<xip:Identifier><xip:ApiId>{api_id}</xip:ApiId><xip:Type>{escape(t)}</xip:Type>"
                        f"<xip:Value>{escape(v)}</xip:Value><xip:Entity>{e.ref}</xip:Entity></xip:Identifier>"
                        for api_id, t, v in e.identifiers)
        return self._doc("IdentifiersResponse",
                         f"<Identifiers>{items}</Identifiers><Paging><TotalResults>{len(e.identifiers)}"
                         f"</TotalResults></Paging><AdditionalInformation><Self>{self._url(e, '/identifiers')}"
                         f"</Self></AdditionalInformation>")

    # metadata fragments ----------------------------------------------------------------------------
    # add_metadata_as_fragment(), update_metadata(), metadata_for_entity(), delete_metadata() in entityAPI.py:
    # an xip:MetadataContainer (schemaUri, Ref, Entity, Content) in and a MetadataResponse out; 204 on delete.
    def _parse_container(self, body: bytes):
        """(schema, ref or None, content xml) from a posted xip:MetadataContainer, or an error Reply."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            return text_reply(400, f"malformed XML: {e}")
        if not root.tag.endswith("}MetadataContainer") or "schemaUri" not in root.attrib:
            return text_reply(400, "expected xip:MetadataContainer with a schemaUri attribute")
        content = root.find(f"{{{self.xip_ns}}}Content")
        if content is None or len(content) != 1:
            return text_reply(400, f"expected one element inside {{{self.xip_ns}}}Content")
        ref = root.find(f"{{{self.xip_ns}}}Ref")
        return root.attrib["schemaUri"], (ref.text if ref is not None else None), \
            ET.tostring(content[0], encoding="unicode").strip()

    def _fragment_doc(self, e: Entity, mref: str) -> Reply:
        schema, xml = e.metadata[mref]
        return self._doc("MetadataResponse",
                         f"<xip:MetadataContainer schemaUri={quoteattr(schema)}><xip:Ref>{mref}</xip:Ref>"
                         f"<xip:Entity>{e.ref}</xip:Entity><xip:Content>{reserialised(xml)}</xip:Content>"
                         f"</xip:MetadataContainer><AdditionalInformation><Self>"
                         f"{self._url(e, '/metadata/' + mref)}</Self></AdditionalInformation>")

    def _add_fragment(self, request, query, path_kind, ref):
        e = self._find(path_kind, ref)
        if e is None:
            return not_found(ref)
        parsed = self._parse_container(request.body)
        if isinstance(parsed, Reply):
            return parsed
        schema, _, xml = parsed
        mref = str(uuid.uuid4())
        e.metadata[mref] = (schema, xml)
        return self._fragment_doc(e, mref)

    def _get_fragment(self, request, query, path_kind, ref, mref):
        e = self._find(path_kind, ref)
        if e is None or mref not in e.metadata:
            return not_found(mref)
        return self._fragment_doc(e, mref)

    def _put_fragment(self, request, query, path_kind, ref, mref):
        e = self._find(path_kind, ref)
        if e is None or mref not in e.metadata:
            return not_found(mref)
        parsed = self._parse_container(request.body)
        if isinstance(parsed, Reply):
            return parsed
        schema, body_ref, xml = parsed
        if body_ref not in (None, mref):
            return text_reply(400, f"container Ref {body_ref} does not match {mref}")
        e.metadata[mref] = (schema, xml)
        return self._fragment_doc(e, mref)

    def _delete_fragment(self, request, query, path_kind, ref, mref):
        e = self._find(path_kind, ref)
        if e is None or e.metadata.pop(mref, None) is None:
            return not_found(mref)
        return Reply(204)

    # representations -> content objects -> generations -> bitstreams -------------------------------
    def _cos(self, asset: Entity, rep_type: str, index: int | None = None) -> list[Entity]:
        return [e for e in (self._entities[c] for c in asset.content_objects)
                if e.rep_type == rep_type and index in (None, e.rep_index)]

    def _representations(self, request, query, ref):
        # entityAPI.py representations(): Representation@type elements whose text is the next URL.
        a = self._find("information-objects", ref)
        if a is None:
            return not_found(ref)
        reps = "".join(f'<Representation type="{t}" name="{t}-{n}">{self._url(a, f"/representations/{t}/{n}")}'
                       f"</Representation>" for t in ("Preservation", "Access")
                       for n in sorted({c.rep_index for c in self._cos(a, t)}))
        return self._doc("RepresentationsResponse", f"<Representations>{reps}</Representations>"
                         f"<AdditionalInformation><Self>{self._url(a, '/representations')}</Self>"
                         f"</AdditionalInformation>")

    def _representation(self, request, query, ref, rep_type, index):
        # entityAPI.py content_objects(): ContentObjects/ContentObject@title links. The double numbers the
        # representations of a type 1, 2, ... in their URLs (inferred: pyPreservica follows the listed URL,
        # whatever its shape, and an asset may have several of a type: representations() returns a set).
        a = self._find("information-objects", ref)
        cos = self._cos(a, rep_type, int(index)) if a else []
        if not cos:
            return not_found(f"{ref}/{rep_type}/{index}")
        xip_cos = "".join(f"<xip:ContentObject>{c.ref}</xip:ContentObject>" for c in cos)
        links = "".join(f"<ContentObject title={quoteattr(c.title)}>{self._url(c)}</ContentObject>" for c in cos)
        return self._doc("RepresentationResponse",
                         f"<xip:Representation><xip:InformationObject>{a.ref}</xip:InformationObject>"
                         f"<xip:Name>{rep_type}-{index}</xip:Name><xip:Type>{rep_type}</xip:Type>"
                         f"<xip:ContentObjects>{xip_cos}</xip:ContentObjects></xip:Representation>"
                         f"<ContentObjects>{links}</ContentObjects><AdditionalInformation><Self>"
                         f"{self._url(a, f'/representations/{rep_type}/{index}')}</Self></AdditionalInformation>")

    def _generations(self, request, query, co_ref):
        # entityAPI.py generations(): Generation@original/@active links, then each GenerationResponse's
        # xip:Generation (formats, EffectiveDate, Bitstreams) and Bitstreams/Bitstream@filename links.
        c = self._find("content-objects", co_ref)
        if c is None:
            return not_found(co_ref)
        return self._doc("GenerationsResponse",
                         f'<Generations><Generation original="true" active="true">{self._url(c, "/generations/1")}'
                         f"</Generation></Generations><AdditionalInformation><Self>{self._url(c, '/generations')}"
                         f"</Self></AdditionalInformation>")

    def _generation(self, request, query, co_ref, gen):
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1":
            return not_found(f"{co_ref}/generations/{gen}")
        return self._doc("GenerationResponse",
                         f'<xip:Generation original="true" active="true"><xip:ContentObject>{c.ref}'
                         f"</xip:ContentObject>{format_xml(c.format_group, c.puid, c.format_name)}"
                         f"<xip:EffectiveDate>2024-01-01T00:00:00.000Z</xip:EffectiveDate>"
                         f"<xip:Bitstreams><xip:Bitstream>{escape(c.filename)}</xip:Bitstream></xip:Bitstreams>"
                         f"</xip:Generation><Bitstreams><Bitstream filename={quoteattr(c.filename)}>"
                         f"{self._url(c, '/generations/1/bitstreams/1')}</Bitstream></Bitstreams>"
                         f"<AdditionalInformation><Self>{self._url(c, '/generations/1')}</Self>"
                         f"</AdditionalInformation>")

    def _bitstream(self, request, query, co_ref, gen, index):
        # entityAPI.py bitstream(): xip:Bitstream Filename, FileSize, Fixities/Fixity (algorithm, value) and
        # the AdditionalInformation/Content URL bitstream_content() downloads. Which algorithms a real
        # Preservica records is its configuration (SHA1 by default here: inferred).
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1" or index != "1":
            return not_found(f"{co_ref}/generations/{gen}/bitstreams/{index}")
        # One xip:Fixity per algorithm the double records (fixity_algorithms), whatever the size: content
        # streamed as generated is hashed from the same pieces (streamed_digest).
        names = {algo: algo.replace("-", "").lower() for algo in self.fixity_algorithms}
        if c.size <= MAX_CONTENT_BYTES or c.content is not None:
            values = {algo: hashlib.new(name, c.body()).hexdigest() for algo, name in names.items()}
        else:
            values = {algo: streamed_digest(c.filename, c.size, name) for algo, name in names.items()}
        values.update(c.fixity_override)   # set_fixity: a stored value that does not match the content
        fixity = "<xip:Fixities>" + "".join(
            f"<xip:Fixity><xip:FixityAlgorithmRef>{escape(algo)}</xip:FixityAlgorithmRef>"
            f"<xip:FixityValue>{escape(value)}</xip:FixityValue></xip:Fixity>"
            for algo, value in values.items()) + "</xip:Fixities>"
        url = self._url(c, "/generations/1/bitstreams/1")
        return self._doc("BitstreamResponse",
                         f"<xip:Bitstream><xip:Filename>{escape(c.filename)}</xip:Filename>"
                         f"<xip:FileSize>{c.size}</xip:FileSize>{fixity}</xip:Bitstream>"
                         f"<AdditionalInformation><Self>{url}</Self><Content>{url}/content</Content>"
                         f"</AdditionalInformation>")

    def _bitstream_content(self, request, query, co_ref, gen, index):
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1" or index != "1":
            return not_found(co_ref)
        if c.size > MAX_CONTENT_BYTES and c.content is None:
            return streamed_reply(c.filename, c.size)   # generated as it is sent, never held whole
        return Reply(200, {"Content-Type": "application/octet-stream"}, c.body())

    # thumbnails ---------------------------------------------------------------------------------
    def _thumbnail(self, request, query):
        # entityAPI.py thumbnail(): GET /api/content/thumbnail?id=sdb:<IO|SO>|<ref>&size=small|medium|large.
        kind, _, ref = query.get("id", "").removeprefix("sdb:").partition("|")
        if query.get("size", "large") not in THUMBNAIL_SIZES:
            return text_reply(400, "size must be small, medium or large")
        e = self._entities.get(ref)
        if e is None or e.kind != kind or e.thumbnail is None:
            return not_found(ref)
        return Reply(200, {"Content-Type": image_type(e.thumbnail)}, e.thumbnail)

    def _doc(self, root: str, inner: str) -> Reply:
        return xml_reply(200, f'<{root} xmlns="{self.entity_ns}" xmlns:xip="{self.xip_ns}">{inner}</{root}>')


def reserialised(xml: str) -> str:
    """A fragment as a server may plausibly answer it, not as it was sent (inferred: no public source says how
    Preservica stores one): the root's namespace as the default one (pyPreservica sent `ns0:` prefixes), the
    attributes in reverse order, indented. What the app compares must survive this (core/canonical.py)."""
    root = ET.fromstring(xml)
    for element in root.iter():
        items = list(element.attrib.items())
        element.attrib.clear()
        element.attrib.update(reversed(items))
    ET.indent(root)
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    try:
        return ET.tostring(root, encoding="unicode", default_namespace=namespace or None)
    except ValueError:   # an element outside that namespace: prefixes as ElementTree picks them
        return ET.tostring(root, encoding="unicode")
