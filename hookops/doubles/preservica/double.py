"""The Preservica double: a local Preservica that the real pyPreservica clients talk to unchanged
(see the package's docstring); its state, test controls, authentication and request routing."""
from __future__ import annotations

import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from urllib.parse import parse_qs, unquote, urlsplit

from ..base import HttpDouble, Received, Reply
from .entities import EntityApi
from .events import EventsApi
from .model import Entity, json_reply, text_reply, xml_reply
from .streamed import FormatControls
from .webhooks import WebhookApi


class PreservicaDouble(FormatControls, EntityApi, WebhookApi, EventsApi, HttpDouble):
    """Preservica REST subset: auth, entities, identifiers, metadata, thumbnails, bitstreams, webhooks,
    the event log, updated-since and folder children (events.py).

    Constructor: ``PreservicaDouble(username="test-user", password="test-password", tenant="TEST",
    version="7.7.0", roles=(...manager roles...), handshake=False, tls=None)``. With ``handshake=True`` a new
    subscription is only created after the subscriber URL answers Preservica's challenge correctly.

    Properties: ``server`` ("127.0.0.1:PORT", for the SDK's ``server=``), ``base_url``, ``port``,
    ``xip_ns``/``entity_ns``, ``requests`` ([(method, unquoted path+query)]), ``login_count``,
    ``subscriptions`` (id -> dict incl. the secret).

    Controls: ``add_asset``, ``add_folder``, ``set_security_tag`` (an asset and its content objects, or one content
    object), ``set_parent`` (any text), ``set_format`` (PUID, format group), ``remove_asset``,
    ``set_fixity`` (a stored value that does not match), ``fixity_algorithms`` (what Fixities lists),
    ``add_metadata`` (seed a fragment), ``edit_metadata`` (a person's edit), ``metadata(ref)``,
    ``fail_next(n, status=500)``, ``expire_tokens()``, ``latency``,
    ``respond_with`` (any path), ``notify(subscription_id, refs)`` (send a signed event),
    ``record_event(log_type, refs, when)``, ``touch(ref)``, ``page_limit``.
    """

    def __init__(self, username: str = "test-user", password: str = "test-password", tenant: str = "TEST",
                 version: str = "7.7.0", roles=("ROLE_SDB_MANAGER_USER", "ROLE_SDB_CONFIG_MANAGER_USER"),
                 handshake: bool = False, tls=None):
        super().__init__(tls)
        self.username, self.password, self.tenant = username, password, tenant
        self.version = version
        self.roles = list(roles)
        self.handshake = handshake
        self.subscriptions: dict[str, dict] = {}
        self._entities: dict[str, Entity] = {}
        self._tokens: set[str] = set()
        self._failures: deque[tuple[int, dict, str | None, str | None]] = deque()
        self._lock = threading.RLock()
        self.saved: list[tuple[str, str, str]] = []   # (ref, title, description) of every entity save
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
            ("PUT", r"/api/entity/(information-objects|structural-objects)/([^/]+)", self._save),
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
        self._init_events()
        self._routes += self.event_routes()
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
        """``bitstreams``: (filename, size), (filename, size, "Access"|"Preservation") or (filename, size, type,
        n), the n-th representation of that type (default 1); each becomes one content object with one active
        original generation holding one bitstream.
        ``size`` may be the real bytes instead (a WAV, a PNG made by the test), served as they are."""
        with self._lock:
            self.remove_asset(ref)
            asset = Entity("IO", ref, title, description, security_tag, parent, thumbnail=thumbnail)
            asset.identifiers = [(uuid.uuid4().hex, t, v) for t, v in (identifiers or {}).items()]
            for i, (filename, size, *rep) in enumerate(bitstreams, start=1):
                co_ref = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ref}/co/{i}"))
                content = bytes(size) if isinstance(size, (bytes, bytearray)) else None
                self._entities[co_ref] = Entity("CO", co_ref, filename, "", security_tag, ref,
                                                filename=filename,
                                                size=len(content) if content is not None else int(size),
                                                rep_type=rep[0] if rep else "Preservation", content=content,
                                                rep_index=rep[1] if len(rep) > 1 else 1)
                asset.content_objects.append(co_ref)
            self._entities[ref] = asset
            self.touch(ref)

    def set_security_tag(self, ref: str, tag: str) -> None:
        """Change an entity's security tag (an asset's reaches its content objects, as Preservica's
        `includeDescendants=true` does: inferred from its name), or one content object's alone: each is served
        in its own <xip:SecurityTag>, which pyPreservica's content_object() reads."""
        with self._lock:
            entity = self._entities[ref]
            entity.security_tag = tag
            for co_ref in entity.content_objects:
                self._entities[co_ref].security_tag = tag

    def set_description(self, ref: str, description: str) -> None:
        """A person edits an entity's description in Preservica (not through save(): not in `saved`)."""
        with self._lock:
            self._entities[ref].description = description

    def set_parent(self, ref: str, parent: str | None) -> None:
        """Point an entity at another parent, any text (a test's hostile entity document; it is served escaped)."""
        with self._lock:
            self._entities[ref].parent = parent

    def source_of(self, ref: str, rep_type: str = "Access", index: int = 0) -> tuple[str, dict[str, str]]:
        """(content object ref, fixity as pyPreservica reads it) of an asset's `index`-th file of `rep_type`:
        what `transcribe` records on the transcript it made from that file."""
        import hashlib
        with self._lock:
            cos = [self._entities[c] for c in self._entities[ref].content_objects]
            co = [c for c in cos if c.rep_type == rep_type][index]
            return co.ref, {"SHA1": hashlib.sha1(co.body()).hexdigest()}

    def set_hidden(self, ref: str, hidden: bool = True) -> None:
        """Hide an asset (or show it again), as CHANGE_ASSET_VISIBILITY reports."""
        with self._lock:
            self._entities[ref].hidden = hidden

    def add_folder(self, ref: str, title: str, description: str = "", security_tag: str = "open",
                   parent: str | None = None, thumbnail: bytes | None = None,
                   identifiers: dict[str, str] | None = None) -> None:
        with self._lock:
            folder = Entity("SO", ref, title, description, security_tag, parent, thumbnail=thumbnail)
            folder.identifiers = [(uuid.uuid4().hex, t, v) for t, v in (identifiers or {}).items()]
            self._entities[ref] = folder
            self.touch(ref)

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

    def edit_metadata(self, ref: str, schema: str, xml: str) -> None:
        """A person's edit of the asset's fragment of `schema` (the first), as the Preservica UI would save it."""
        ET.fromstring(xml)
        with self._lock:
            fragments = self._entities[ref].metadata
            fragments[next(m for m, (s, _) in fragments.items() if s == schema)] = (schema, xml)

    def metadata(self, ref: str) -> list[tuple[str, str]]:
        """The fragments on an entity as (schema, xml), in the order they were added."""
        with self._lock:
            return list(self._entities[ref].metadata.values())

    def fail_next(self, n: int, status: int = 500, headers: dict[str, str] | None = None,
                  path_prefix: str | None = None, method: str | None = None) -> None:
        """The next ``n`` entity/content requests (``/api/entity/...`` except the version call,
        ``/api/content/...``; or only paths starting with ``path_prefix``; only ``method``'s) answer ``status``."""
        with self._lock:
            self._failures.extend([(status, dict(headers or {}), path_prefix, method)] * n)

    def clear_failures(self) -> None:
        """Forget the failures ``fail_next`` queued that were not used up (Preservica is back)."""
        with self._lock:
            self._failures.clear()

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
                # Header name: pyPreservica common.py HEADER_TOKEN; a 401 makes the SDK log in again (its
                # retry in common.py). The body's wording is inferred.
                if request.headers.get("preservica-access-token") not in self._tokens:
                    return json_reply(401, {"success": False, "message": "Invalid or expired access token"})
            failure = self._take_failure(path, request.method)
            if failure:
                return failure
        matched_path = False
        for method, pattern, func in self._routes:
            m = pattern.match(path)
            if m:
                matched_path = True
                if method == request.method:
                    with self._lock:   # one request at a time touches state; latency is spent outside
                        self._base = f"{self.scheme}://{request.headers.get('host', self.server)}"
                        return func(request, query, *m.groups())
        return text_reply(405 if matched_path else 404, "no such endpoint in PreservicaDouble")

    def _take_failure(self, path: str, method: str = "") -> Reply | None:
        eligible = (path.startswith("/api/entity/") and not path.startswith("/api/entity/versiondetails")) \
            or path.startswith("/api/content/")
        with self._lock:
            for i, (status, headers, prefix, only) in enumerate(self._failures):
                if only not in (None, method):
                    continue
                if (prefix and path.startswith(prefix)) or (prefix is None and eligible):
                    del self._failures[i]
                    # Inferred: a plain-text error body (the SDK reads only the status of a failure).
                    return Reply(status, {"Content-Type": "text/plain", **headers}, b"injected failure")
        return None

    # auth, version, user ---------------------------------------------------------------------------
    def _login(self, request, query):
        # pyPreservica common.py __token__: a form POST (username, password, tenant) to /api/accesstoken/login,
        # reading response.json()['token'] (and ['tenant'] when none is given).
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if (form.get("username") != self.username or form.get("password") != self.password
                or form.get("tenant", self.tenant) != self.tenant):
            # pyPreservica calls .json() on a failed login, so the body must be JSON.
            return json_reply(401, {"success": False, "message": "Invalid credentials"})
        return json_reply(200, self._new_token())

    def _refresh(self, request, query):
        # Not called by pyPreservica 4.2 (it logs in again on 401); here for other clients.
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("refreshToken") not in self._tokens:
            return json_reply(401, {"success": False, "message": "Invalid refresh token"})
        return json_reply(200, self._new_token())

    def _new_token(self) -> dict:
        # 'token' is what pyPreservica reads; 'refresh-token', 'validFor' (minutes), 'user' are inferred from
        # Preservica's access token API as the SDK's refresh code names them (common.py), unconfirmed here.
        token, refresh = str(uuid.uuid4()), str(uuid.uuid4())
        self._tokens.update((token, refresh))
        return {"success": True, "token": token, "refresh-token": refresh, "validFor": 15,
                "user": self.username, "tenant": self.tenant}

    def _version(self, request, query):
        # pyPreservica common.py: GET /api/entity/versiondetails/version, text between <CurrentVersion> tags.
        return xml_reply(200, f'<VersionDetails xmlns="{self.entity_ns}"><CurrentVersion>{self.version}'
                              f'</CurrentVersion></VersionDetails>')

    def _user_details(self, request, query):
        # pyPreservica common.py: GET /api/user/details, json ['roles'] checked by _check_if_user_has_*_role;
        # the other fields are inferred.
        return json_reply(200, {"userName": self.username, "fullName": "Test User", "tenant": self.tenant,
                                "roles": self.roles})
