"""A local Preservica that the real pyPreservica clients (EntityAPI, WebHooksAPI) talk to unchanged.

Paths, XML namespaces and response shapes follow what pyPreservica 4.2 parses (common.py,
entityAPI.py, webHooksAPI.py): every later hop (representations -> content objects ->
generations -> bitstreams, metadata fragments) is an absolute URL taken from the previous
response, exactly as the SDK follows it.

    with PreservicaDouble(username="u", password="p", tenant="T") as pres:
        pres.add_asset("io-1", "Title", thumbnail=make_png(), bitstreams=[("a.tif", 1234)])
        client = EntityAPI(username="u", password="p", tenant="T", server=pres.server, protocol="http")
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import secrets
import struct
import threading
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from .receivers import HttpDouble, Received, Reply

PATHS = {"IO": "information-objects", "SO": "structural-objects", "CO": "content-objects"}
KINDS = {v: k for k, v in PATHS.items()}
TAGS = {"IO": "InformationObject", "SO": "StructuralObject", "CO": "ContentObject"}
TRIGGERS = ("MOVED", "FULL_TEXT_INDEXED", "CHANGED_SECURITY_DESCRIPTOR", "INGEST_FAILED", "CHANGE_ASSET_VISIBILITY")
MANAGER_ROLES = {"ROLE_SDB_ADMIN_USER", "ROLE_SDB_MANAGER_USER", "ROLE_SDB_CONFIG_MANAGER_USER"}
THUMBNAIL_SIZES = ("small", "medium", "large")
MAX_CONTENT_BYTES = 16 * 1024 * 1024   # bitstream bodies and fixities are generated only up to this size


def make_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG of one colour (distinct colours give distinct bytes per asset)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"


def bitstream_bytes(filename: str, size: int) -> bytes:
    """The content the double serves for a bitstream: deterministic, so tests can compare."""
    block = hashlib.sha256(filename.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@dataclass
class _Entity:
    kind: str                                   # IO, SO or CO
    ref: str
    title: str
    description: str = ""
    security_tag: str = "open"
    parent: str | None = None
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)   # (api id, type, value)
    metadata: dict[str, tuple[str, str]] = field(default_factory=dict)      # fragment ref -> (schema, xml)
    thumbnail: bytes | None = None
    content_objects: list[str] = field(default_factory=list)               # IO: its CO refs, in order
    filename: str = ""                                                      # CO: its one bitstream
    size: int = 0
    rep_type: str = "Preservation"                                          # CO: representation it is in


class PreservicaDouble(HttpDouble):
    """Preservica REST subset: auth, entities, identifiers, metadata, thumbnails, bitstreams, webhooks.

    Constructor: ``PreservicaDouble(username="test-user", password="test-password", tenant="TEST",
    version="7.7.0", roles=(...manager roles...), handshake=False)``. With ``handshake=True`` a new
    subscription is only created after the subscriber URL answers Preservica's challenge correctly.

    Properties: ``server`` ("127.0.0.1:PORT", for the SDK's ``server=``), ``base_url``, ``port``,
    ``xip_ns``/``entity_ns``, ``requests`` ([(method, unquoted path+query)]), ``login_count``,
    ``subscriptions`` (id -> dict incl. the secret).

    Controls: ``add_asset``, ``add_folder``, ``remove_asset``, ``add_metadata`` (seed a fragment),
    ``metadata(ref)``, ``fail_next(n, status=500)``, ``expire_tokens()``, ``latency``,
    ``respond_with`` (any path), ``notify(subscription_id, refs)`` (send a signed event).
    """

    def __init__(self, username: str = "test-user", password: str = "test-password", tenant: str = "TEST",
                 version: str = "7.7.0", roles=("ROLE_SDB_MANAGER_USER", "ROLE_SDB_CONFIG_MANAGER_USER"),
                 handshake: bool = False):
        super().__init__()
        self.username, self.password, self.tenant = username, password, tenant
        self.version = version
        self.roles = list(roles)
        self.handshake = handshake
        self.subscriptions: dict[str, dict] = {}
        self._entities: dict[str, _Entity] = {}
        self._tokens: set[str] = set()
        self._failures: deque[tuple[int, dict, str | None]] = deque()
        self._lock = threading.RLock()
        major, minor = (int(x) for x in version.split(".")[:2])
        suffix = "v6.0" if (major, minor) < (6, 2) else f"v{major}.{minor}"   # as common.__version_namespace__
        self.xip_ns = f"http://preservica.com/XIP/{suffix}"
        self.entity_ns = f"http://preservica.com/EntityAPI/{suffix}"
        self._routes = [
            ("POST", r"/api/accesstoken/login", self._login),
            ("POST", r"/api/accesstoken/refresh", self._refresh),
            ("GET", r"/api/entity/versiondetails/version", self._version),
            ("GET", r"/api/user/details", self._user_details),
            ("GET", r"/api/content/thumbnail", self._thumbnail),
            ("GET", r"/api/webhook/subscriptions", self._list_subscriptions),
            ("POST", r"/api/webhook/subscriptions", self._subscribe),
            ("DELETE", r"/api/webhook/subscriptions/([^/]+)", self._unsubscribe),
            ("GET", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)", self._entity),
            ("GET", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)/identifiers",
             self._identifiers),
            ("POST", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)/metadata",
             self._add_fragment),
            ("GET", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)/metadata/([^/]+)",
             self._get_fragment),
            ("PUT", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)/metadata/([^/]+)",
             self._put_fragment),
            ("DELETE", r"/api/entity/(information-objects|structural-objects|content-objects)/([^/]+)/metadata/([^/]+)",
             self._delete_fragment),
            ("GET", r"/api/entity/information-objects/([^/]+)/representations", self._representations),
            ("GET", r"/api/entity/information-objects/([^/]+)/representations/(Preservation|Access)/(\d+)",
             self._representation),
            ("GET", r"/api/entity/content-objects/([^/]+)/generations", self._generations),
            ("GET", r"/api/entity/content-objects/([^/]+)/generations/(\d+)", self._generation),
            ("GET", r"/api/entity/content-objects/([^/]+)/generations/(\d+)/bitstreams/(\d+)", self._bitstream),
            ("GET", r"/api/entity/content-objects/([^/]+)/generations/(\d+)/bitstreams/(\d+)/content",
             self._bitstream_content),
        ]
        self._routes = [(m, re.compile(p + "$"), f) for m, p, f in self._routes]

    # -- test controls -------------------------------------------------------------------------
    @property
    def server(self) -> str:
        """What pyPreservica wants as ``server=`` (used with ``protocol="http"``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, unquote(r.path)) for r in list(self.received)]

    @property
    def login_count(self) -> int:
        return sum(1 for m, p in self.requests if m == "POST" and p == "/api/accesstoken/login")

    def add_asset(self, ref: str, title: str, description: str = "", security_tag: str = "open",
                  parent: str | None = None, thumbnail: bytes | None = None,
                  bitstreams=(), identifiers: dict[str, str] | None = None) -> None:
        """``bitstreams``: (filename, size) or (filename, size, "Access"|"Preservation"); each
        becomes one content object with one active original generation holding one bitstream."""
        with self._lock:
            self.remove_asset(ref)
            asset = _Entity("IO", ref, title, description, security_tag, parent, thumbnail=thumbnail)
            asset.identifiers = [(uuid.uuid4().hex, t, v) for t, v in (identifiers or {}).items()]
            for i, (filename, size, *rep) in enumerate(bitstreams, start=1):
                co_ref = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ref}/co/{i}"))
                self._entities[co_ref] = _Entity("CO", co_ref, filename, "", security_tag, ref,
                                                 filename=filename, size=int(size),
                                                 rep_type=rep[0] if rep else "Preservation")
                asset.content_objects.append(co_ref)
            self._entities[ref] = asset

    def add_folder(self, ref: str, title: str, description: str = "", security_tag: str = "open",
                   parent: str | None = None, thumbnail: bytes | None = None,
                   identifiers: dict[str, str] | None = None) -> None:
        with self._lock:
            folder = _Entity("SO", ref, title, description, security_tag, parent, thumbnail=thumbnail)
            folder.identifiers = [(uuid.uuid4().hex, t, v) for t, v in (identifiers or {}).items()]
            self._entities[ref] = folder

    def remove_asset(self, ref: str) -> None:
        with self._lock:
            entity = self._entities.pop(ref, None)
            for co_ref in entity.content_objects if entity else ():
                self._entities.pop(co_ref, None)

    def add_metadata(self, ref: str, schema: str, xml: str) -> str:
        """Seed a fragment as if it had been added earlier; returns its fragment ref."""
        ET.fromstring(xml)   # fail in the test, not later in the SDK
        with self._lock:
            mref = str(uuid.uuid4())
            self._entities[ref].metadata[mref] = (schema, xml)
            return mref

    def metadata(self, ref: str) -> list[tuple[str, str]]:
        """The fragments on an entity as (schema, xml), in the order they were added."""
        with self._lock:
            return list(self._entities[ref].metadata.values())

    def fail_next(self, n: int, status: int = 500, headers: dict[str, str] | None = None,
                  path_prefix: str | None = None) -> None:
        """The next ``n`` entity/content requests (``/api/entity/...`` except the version call,
        ``/api/content/...``; or only paths starting with ``path_prefix``) answer ``status``."""
        with self._lock:
            self._failures.extend([(status, dict(headers or {}), path_prefix)] * n)

    def expire_tokens(self) -> None:
        """Invalidate every issued token: the next call gets 401 and the SDK must log in again."""
        with self._lock:
            self._tokens.clear()

    # -- request handling ------------------------------------------------------------------------
    def handle(self, request: Received) -> Reply:
        parts = urlsplit(request.path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if not path.startswith("/api/accesstoken/"):
            with self._lock:
                if request.headers.get("preservica-access-token") not in self._tokens:
                    return _json(401, {"success": False, "message": "Invalid or expired access token"})
            failure = self._take_failure(path)
            if failure:
                return failure
        matched_path = False
        for method, pattern, func in self._routes:
            m = pattern.match(path)
            if m:
                matched_path = True
                if method == request.method:
                    with self._lock:   # one request at a time touches state; latency is spent outside
                        self._base = f"http://{request.headers.get('host', self.server)}"
                        return func(request, query, *m.groups())
        return _text(405 if matched_path else 404, "no such endpoint in PreservicaDouble")

    def _take_failure(self, path: str) -> Reply | None:
        eligible = (path.startswith("/api/entity/") and not path.startswith("/api/entity/versiondetails")) \
            or path.startswith("/api/content/")
        with self._lock:
            for i, (status, headers, prefix) in enumerate(self._failures):
                if (prefix and path.startswith(prefix)) or (prefix is None and eligible):
                    del self._failures[i]
                    return Reply(status, {"Content-Type": "text/plain", **headers}, b"injected failure")
        return None

    # auth, version, user ---------------------------------------------------------------------------
    def _login(self, request, query):
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if (form.get("username") != self.username or form.get("password") != self.password
                or form.get("tenant", self.tenant) != self.tenant):
            # pyPreservica calls .json() on a failed login, so the body must be JSON.
            return _json(401, {"success": False, "message": "Invalid credentials"})
        return _json(200, self._new_token())

    def _refresh(self, request, query):
        # Not called by pyPreservica 4.2 (it logs in again on 401); here for other clients.
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("refreshToken") not in self._tokens:
            return _json(401, {"success": False, "message": "Invalid refresh token"})
        return _json(200, self._new_token())

    def _new_token(self) -> dict:
        token, refresh = str(uuid.uuid4()), str(uuid.uuid4())
        self._tokens.update((token, refresh))
        return {"success": True, "token": token, "refresh-token": refresh, "validFor": 15,
                "user": self.username, "tenant": self.tenant}

    def _version(self, request, query):
        return _xml(200, f'<VersionDetails xmlns="{self.entity_ns}"><CurrentVersion>{self.version}'
                         f'</CurrentVersion></VersionDetails>')

    def _user_details(self, request, query):
        return _json(200, {"userName": self.username, "fullName": "Test User", "tenant": self.tenant,
                           "roles": self.roles})

    # entities ----------------------------------------------------------------------------------
    def _find(self, path_kind: str, ref: str) -> _Entity | None:
        entity = self._entities.get(ref)
        return entity if entity and entity.kind == KINDS[path_kind] else None

    def _url(self, entity: _Entity, tail: str = "") -> str:
        return f"{self._base}/api/entity/{PATHS[entity.kind]}/{entity.ref}{tail}"

    def _entity(self, request, query, path_kind, ref):
        e = self._find(path_kind, ref)
        if e is None:
            return _not_found(ref)
        tag = TAGS[e.kind]
        fields = f"<xip:Ref>{e.ref}</xip:Ref><xip:Title>{escape(e.title)}</xip:Title>"
        if e.description:
            fields += f"<xip:Description>{escape(e.description)}</xip:Description>"
        fields += f"<xip:SecurityTag>{escape(e.security_tag)}</xip:SecurityTag>"
        if e.parent:
            fields += f"<xip:Parent>{e.parent}</xip:Parent>"
        extra = f"<Self>{self._url(e)}</Self><Identifiers>{self._url(e, '/identifiers')}</Identifiers>"
        if e.parent:
            parent = self._entities.get(e.parent)
            extra += f"<Parent>{self._url(parent) if parent else e.parent}</Parent>"
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

    def _identifiers(self, request, query, path_kind, ref):
        e = self._find(path_kind, ref)
        if e is None:
            return _not_found(ref)
        items = "".join(f"<xip:Identifier><xip:ApiId>{api_id}</xip:ApiId><xip:Type>{escape(t)}</xip:Type>"
                        f"<xip:Value>{escape(v)}</xip:Value><xip:Entity>{e.ref}</xip:Entity></xip:Identifier>"
                        for api_id, t, v in e.identifiers)
        return self._doc("IdentifiersResponse",
                         f"<Identifiers>{items}</Identifiers><Paging><TotalResults>{len(e.identifiers)}"
                         f"</TotalResults></Paging><AdditionalInformation><Self>{self._url(e, '/identifiers')}"
                         f"</Self></AdditionalInformation>")

    # metadata fragments ----------------------------------------------------------------------------
    def _parse_container(self, body: bytes):
        """(schema, ref or None, content xml) from a posted xip:MetadataContainer, or an error Reply."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            return _text(400, f"malformed XML: {e}")
        if not root.tag.endswith("}MetadataContainer") or "schemaUri" not in root.attrib:
            return _text(400, "expected xip:MetadataContainer with a schemaUri attribute")
        content = root.find(f"{{{self.xip_ns}}}Content")
        if content is None or len(content) != 1:
            return _text(400, f"expected one element inside {{{self.xip_ns}}}Content")
        ref = root.find(f"{{{self.xip_ns}}}Ref")
        return root.attrib["schemaUri"], (ref.text if ref is not None else None), \
            ET.tostring(content[0], encoding="unicode").strip()

    def _fragment_doc(self, e: _Entity, mref: str) -> Reply:
        schema, xml = e.metadata[mref]
        return self._doc("MetadataResponse",
                         f"<xip:MetadataContainer schemaUri={quoteattr(schema)}><xip:Ref>{mref}</xip:Ref>"
                         f"<xip:Entity>{e.ref}</xip:Entity><xip:Content>{xml}</xip:Content>"
                         f"</xip:MetadataContainer><AdditionalInformation><Self>"
                         f"{self._url(e, '/metadata/' + mref)}</Self></AdditionalInformation>")

    def _add_fragment(self, request, query, path_kind, ref):
        e = self._find(path_kind, ref)
        if e is None:
            return _not_found(ref)
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
            return _not_found(mref)
        return self._fragment_doc(e, mref)

    def _put_fragment(self, request, query, path_kind, ref, mref):
        e = self._find(path_kind, ref)
        if e is None or mref not in e.metadata:
            return _not_found(mref)
        parsed = self._parse_container(request.body)
        if isinstance(parsed, Reply):
            return parsed
        schema, body_ref, xml = parsed
        if body_ref not in (None, mref):
            return _text(400, f"container Ref {body_ref} does not match {mref}")
        e.metadata[mref] = (schema, xml)
        return self._fragment_doc(e, mref)

    def _delete_fragment(self, request, query, path_kind, ref, mref):
        e = self._find(path_kind, ref)
        if e is None or e.metadata.pop(mref, None) is None:
            return _not_found(mref)
        return Reply(204)

    # representations -> content objects -> generations -> bitstreams -------------------------------
    def _cos(self, asset: _Entity, rep_type: str) -> list[_Entity]:
        return [self._entities[c] for c in asset.content_objects if self._entities[c].rep_type == rep_type]

    def _representations(self, request, query, ref):
        a = self._find("information-objects", ref)
        if a is None:
            return _not_found(ref)
        reps = "".join(f'<Representation type="{t}" name="{t}-1">{self._url(a, f"/representations/{t}/1")}'
                       f"</Representation>" for t in ("Preservation", "Access") if self._cos(a, t))
        return self._doc("RepresentationsResponse", f"<Representations>{reps}</Representations>"
                         f"<AdditionalInformation><Self>{self._url(a, '/representations')}</Self>"
                         f"</AdditionalInformation>")

    def _representation(self, request, query, ref, rep_type, index):
        a = self._find("information-objects", ref)
        cos = self._cos(a, rep_type) if a else []
        if not cos or index != "1":
            return _not_found(f"{ref}/{rep_type}/{index}")
        xip_cos = "".join(f"<xip:ContentObject>{c.ref}</xip:ContentObject>" for c in cos)
        links = "".join(f"<ContentObject title={quoteattr(c.title)}>{self._url(c)}</ContentObject>" for c in cos)
        return self._doc("RepresentationResponse",
                         f"<xip:Representation><xip:InformationObject>{a.ref}</xip:InformationObject>"
                         f"<xip:Name>{rep_type}-1</xip:Name><xip:Type>{rep_type}</xip:Type>"
                         f"<xip:ContentObjects>{xip_cos}</xip:ContentObjects></xip:Representation>"
                         f"<ContentObjects>{links}</ContentObjects><AdditionalInformation><Self>"
                         f"{self._url(a, f'/representations/{rep_type}/1')}</Self></AdditionalInformation>")

    def _generations(self, request, query, co_ref):
        c = self._find("content-objects", co_ref)
        if c is None:
            return _not_found(co_ref)
        return self._doc("GenerationsResponse",
                         f'<Generations><Generation original="true" active="true">{self._url(c, "/generations/1")}'
                         f"</Generation></Generations><AdditionalInformation><Self>{self._url(c, '/generations')}"
                         f"</Self></AdditionalInformation>")

    def _generation(self, request, query, co_ref, gen):
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1":
            return _not_found(f"{co_ref}/generations/{gen}")
        return self._doc("GenerationResponse",
                         f'<xip:Generation original="true" active="true"><xip:ContentObject>{c.ref}'
                         f"</xip:ContentObject><xip:EffectiveDate>2024-01-01T00:00:00.000Z</xip:EffectiveDate>"
                         f"<xip:Bitstreams><xip:Bitstream>{escape(c.filename)}</xip:Bitstream></xip:Bitstreams>"
                         f"</xip:Generation><Bitstreams><Bitstream filename={quoteattr(c.filename)}>"
                         f"{self._url(c, '/generations/1/bitstreams/1')}</Bitstream></Bitstreams>"
                         f"<AdditionalInformation><Self>{self._url(c, '/generations/1')}</Self>"
                         f"</AdditionalInformation>")

    def _bitstream(self, request, query, co_ref, gen, index):
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1" or index != "1":
            return _not_found(f"{co_ref}/generations/{gen}/bitstreams/{index}")
        fixity = ""
        if c.size <= MAX_CONTENT_BYTES:
            sha1 = hashlib.sha1(bitstream_bytes(c.filename, c.size)).hexdigest()
            fixity = (f"<xip:Fixities><xip:Fixity><xip:FixityAlgorithmRef>SHA1</xip:FixityAlgorithmRef>"
                      f"<xip:FixityValue>{sha1}</xip:FixityValue></xip:Fixity></xip:Fixities>")
        url = self._url(c, "/generations/1/bitstreams/1")
        return self._doc("BitstreamResponse",
                         f"<xip:Bitstream><xip:Filename>{escape(c.filename)}</xip:Filename>"
                         f"<xip:FileSize>{c.size}</xip:FileSize>{fixity}</xip:Bitstream>"
                         f"<AdditionalInformation><Self>{url}</Self><Content>{url}/content</Content>"
                         f"</AdditionalInformation>")

    def _bitstream_content(self, request, query, co_ref, gen, index):
        c = self._find("content-objects", co_ref)
        if c is None or gen != "1" or index != "1":
            return _not_found(co_ref)
        if c.size > MAX_CONTENT_BYTES:
            return _text(501, "PreservicaDouble serves bitstream content only up to 16 MiB")
        return Reply(200, {"Content-Type": "application/octet-stream"}, bitstream_bytes(c.filename, c.size))

    # thumbnails ---------------------------------------------------------------------------------
    def _thumbnail(self, request, query):
        kind, _, ref = query.get("id", "").removeprefix("sdb:").partition("|")
        if query.get("size", "large") not in THUMBNAIL_SIZES:
            return _text(400, "size must be small, medium or large")
        e = self._entities.get(ref)
        if e is None or e.kind != kind or e.thumbnail is None:
            return _not_found(ref)
        return Reply(200, {"Content-Type": _image_type(e.thumbnail)}, e.thumbnail)

    # webhook subscriptions -----------------------------------------------------------------------
    def _may_manage_webhooks(self) -> bool:
        return bool(MANAGER_ROLES & set(self.roles))

    def _list_subscriptions(self, request, query):
        if not self._may_manage_webhooks():
            return _json(403, {"message": "Forbidden"})
        return _json(200, [{k: v for k, v in s.items() if k != "secret"} for s in self.subscriptions.values()])

    def _subscribe(self, request, query):
        if not self._may_manage_webhooks():
            return _json(403, {"message": "Forbidden"})
        try:
            doc = json.loads(request.body)
        except ValueError:
            return _json(400, {"message": "body is not JSON"})
        url, trigger, secret = doc.get("url"), doc.get("triggerType"), doc.get("secret")
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return _json(400, {"message": "url must be an http(s) URL"})
        if trigger not in TRIGGERS:
            return _json(400, {"message": f"unknown triggerType {trigger!r}"})
        if not secret:
            return _json(400, {"message": "secret is required"})
        if self.handshake:
            problem = _challenge(url, secret)
            if problem:
                return _json(400, {"message": f"Subscriber challenge failed: {problem}"})
        sub_id = uuid.uuid4().hex
        self.subscriptions[sub_id] = {
            "id": sub_id, "url": url, "triggerType": trigger, "secret": secret,
            "includeIdentifiers": str(doc.get("includeIdentifiers", "false")).lower() == "true",
            "created": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        return _json(200, {k: v for k, v in self.subscriptions[sub_id].items() if k != "secret"})

    def _unsubscribe(self, request, query, sub_id):
        if not self._may_manage_webhooks():
            return _json(403, {"message": "Forbidden"})
        if self.subscriptions.pop(sub_id, None) is None:
            return _json(404, {"message": f"no subscription {sub_id}"})
        return Reply(204)

    # sending events, as Preservica does --------------------------------------------------------------
    def notify(self, subscription_id: str, refs=(), *, events: list[dict] | None = None,
               event_name: str = "FullTextIndexed", timeout: float = 10.0) -> tuple[int, bytes]:
        """POST one event notification to a subscriber the way Preservica does: JSON body sent
        chunked, header ``Preservica-Signature`` = hex HMAC-SHA256(secret, "preservica-webhook-auth"
        + body). ``refs`` become events (type and identifiers from the stored entities) unless
        ``events`` is given. Returns (status, body) of the subscriber's answer."""
        with self._lock:
            sub = dict(self.subscriptions[subscription_id])
            if events is None:
                events = [self._event(ref, event_name, sub["includeIdentifiers"]) for ref in refs]
        major, minor = self.version.split(".")[:2]
        body = json.dumps({
            "subscriptionId": subscription_id,
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],   # no zone, like Preservica
            "tenant": self.tenant, "version": f"{major}.{minor}", "trigger": sub["triggerType"],
            "events": events}).encode()
        signature = hmac.new(sub["secret"].encode(), b"preservica-webhook-auth" + body, hashlib.sha256).hexdigest()
        target = urlsplit(sub["url"])
        conn_type = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(target.hostname, target.port, timeout=timeout)
        try:
            path = target.path or "/"
            conn.request("POST", path + (f"?{target.query}" if target.query else ""), body=iter([body]),
                         headers={"Content-Type": "application/json", "Preservica-Signature": signature},
                         encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _event(self, ref: str, event_name: str, include_identifiers: bool) -> dict:
        e = self._entities.get(ref)
        ids = [{t: v} for _, t, v in e.identifiers] if (e and include_identifiers) else []
        return {"event": event_name, "entityType": e.kind if e else "IO", "entityRef": ref, "identifiers": ids}

    # helpers -------------------------------------------------------------------------------------
    def _doc(self, root: str, inner: str) -> Reply:
        return _xml(200, f'<{root} xmlns="{self.entity_ns}" xmlns:xip="{self.xip_ns}">{inner}</{root}>')


def _challenge(url: str, secret: str) -> str | None:
    """Do Preservica's subscription handshake against ``url``; None when it is answered correctly."""
    code = secrets.token_hex(16)
    expected = hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}challengeCode={code}", data=b"",
                                     method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never via a proxy
    try:
        with opener.open(request, timeout=10) as response:
            answer = json.loads(response.read())
    except Exception as e:   # HTTPError, connection refused, not JSON...
        return repr(e)
    if answer.get("challengeCode") != code or not hmac.compare_digest(str(answer.get("challengeResponse")), expected):
        return f"wrong challenge answer {answer!r}"
    return None


def _xml(status: int, doc: str) -> Reply:
    return Reply(status, {"Content-Type": "application/xml;charset=UTF-8"},
                 ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + doc).encode())


def _json(status: int, doc) -> Reply:
    return Reply(status, {"Content-Type": "application/json;charset=UTF-8"}, json.dumps(doc).encode())


def _text(status: int, message: str) -> Reply:
    return Reply(status, {"Content-Type": "text/plain;charset=UTF-8"}, message.encode())


def _not_found(what: str) -> Reply:
    return _text(404, f"{what} not found")
