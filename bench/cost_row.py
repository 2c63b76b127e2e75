"""Row 10: what a million events cost, for the default routes and for each of the seven actions alone.

Everything runs in this process, each function body called as the host would call it, over real Azurite:
the intake with a signed delivery of `events` events, then the delivery queue and each action queue read
16 messages at a time (host.json `batchSize`) and each message handed to its function and deleted, as the
Queue trigger does, an action that waits for another (describe for ocr) looking at its queue first, as
deployed (bench/cost_host.py). Measured, per configuration:
- execution seconds: the wall time of each invocation (intake, each dispatcher page, each action message),
  summed; times the Bicep's `instanceMemoryMB` this is the on-demand GB-s (invocations run one after the
  other here, so the sum is the time an instance is executing);
- executions: the invocations, those that put an event back to wait among them (counted from the queue);
- storage operations at the real azure-storage clients (bench.probes.StorageCounter on azure-core's transport):
  the app's own, and this harness's receives and deletes standing in for the host's;
- Preservica requests at the double (login and version once per process, not counted);
- Speech audio seconds: the length of the audio the Speech double received;
- pages OCR'd and prompt and completion tokens: what `ocr` and `describe` recorded for this run's assets
  (bench.cost_ai: the pages in each text blob's provenance, the token counts in each draft's);
- telemetry bytes: every span and log record the app produced, turned into Application Insights envelopes by
  the real azure-monitor-opentelemetry-exporter conversion functions and serialised as JSON, with the
  sampling the app configures (telemetry.SAMPLING_RATIO: every span; logs unsampled) and the worker's log
  level (INFO: inferred, the Python worker's root logger). The host's own telemetry (one request and the
  "Executing"/"Executed" traces per invocation, and its copy of each worker log line: host.json
  logLevel "Function": "Information", all excluded from sampling) is not produced here: it is counted
  from the invocations and the worker's log records and sized like the worker's own envelopes (inferred).
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import wave
from io import BytesIO

from bench import costmodel
from bench.cost_host import SERVICES, drain_actions, host_loop, timed
from bench.cost_telemetry import Telemetry

ACTIONS = ("journal", "thumbnail", "teams", "catalogue", "relay", "transcribe", "publish", "ocr")
# describe drafts from ocr's text (an asset with none is skipped), so it is measured routed after ocr.
PAIRS = (("ocr + describe", "*=ocr,describe"),)
SCHEMA = "urn:example:catalogue"
SECRET = "cost-row-secret"
PER_PROCESS = ("/api/accesstoken", "/api/entity/versiondetails", "/api/user/details")
# Per invocation the host sends a request and two traces ("Executing ...", "Executed ...") (inferred from the
# Functions host's default logging with "Function": "Information"; not observable here).
HOST_ITEMS_PER_INVOCATION = {"requests": 1, "traces": 2}


def configs() -> list[tuple[str, str]]:
    from handlers.core.settings import BY_NAME
    default = BY_NAME["PRESERVICA_ROUTES"].default
    return [("default routes", default)] + [(a, f"*={a}") for a in ACTIONS] + list(PAIRS)


# ---- one configuration ----------------------------------------------------------------------------

def _seconds(wav_bytes: bytes | None) -> float:
    if not wav_bytes:
        return 0.0
    with wave.open(BytesIO(wav_bytes)) as w:
        return w.getnframes() / w.getframerate()


def run_config(world, name: str, routes: str, events: int, counter, tel: Telemetry) -> dict:
    import azure.functions as func

    from handlers import dispatch, intake
    from handlers.core import settings, signature
    from hookops.doubles.deliveries import delivery, encode

    os.environ["PRESERVICA_ROUTES"] = routes
    refs = world.refs(events)
    # Sent now, as a webhook on time is (a late one also has its events' identities checked for the reconciler).
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
    doc = delivery(trigger="FULL_TEXT_INDEXED", refs=refs, timestamp=now)
    for e, i in zip(doc["events"], range(events), strict=True):
        e["identifiers"] = [{"catalogue": f"C/{i}"}]   # a subscription made with includeIdentifiers=true
    body = encode(doc)
    pres_before = len(world.pres.requests)   # a copy of the double's log: count what this run adds
    speech_before = len(world.speech.calls)
    counter.reset()
    tel.clear()
    calls: dict[str, list] = {"intake": [], "dispatch": [], "actions": []}
    with tel.recording():
        req = func.HttpRequest("POST", "http://localhost/api/preservica/webhook", body=body, params={},
                               headers={"Preservica-Signature": signature.sign(SECRET, body)})
        answer = timed(calls["intake"], intake.handle, req)
        assert answer.status_code == 200, answer.get_body()
        host_loop(world.conn, settings.DELIVERY_QUEUE, lambda raw, m: dispatch.dispatch(raw), calls["dispatch"])
        # Side by side as deployed, describe putting back what ocr has not finished (bench/cost_host.py).
        putbacks = drain_actions(world.conn, routes, calls["actions"], counter, tel)
    storage = {k.split("|", 1)[1]: v for k, v in counter.snapshot().items() if k.split("|")[1] in SERVICES}
    preservica = sum(1 for _, p in world.pres.requests[pres_before:] if not p.startswith(PER_PROCESS))
    audio = sum(_seconds(c.audio) for c in world.speech.calls[speech_before:])
    telemetry = tel.measure()
    from bench import cost_ai
    ai = cost_ai.measure(world.conn, refs)   # after the storage snapshot: these reads are not the app's
    executions = sum(len(v) for v in calls.values())
    worker_bytes = sum(x["bytes"] for x in telemetry.values())
    worker_items = sum(x["items"] for x in telemetry.values())
    log_records = telemetry.get("MessageData", {"items": 0, "bytes": 0})
    host = _host_estimate(telemetry, executions, log_records)
    return {"config": name, "routes": routes, "events": events, "executions": executions,
            "invocations": {k: len(v) for k, v in calls.items()},
            "execution_s": sum(sum(v) for v in calls.values()),
            "storage": storage, "preservica_requests": preservica, "speech_audio_s": audio,
            "telemetry": telemetry, "worker_telemetry_bytes": worker_bytes, "worker_telemetry_items": worker_items,
            "host_telemetry": host, "ai": ai, "putbacks": putbacks,
            "invocation_s": [t for v in calls.values() for t in v]}


def _host_estimate(telemetry: dict, executions: int, log_records: dict) -> dict:
    """The host's own items, sized like the worker's envelopes of the same table (inferred)."""
    def mean(kind):
        x = telemetry.get(kind)
        return x["bytes"] / x["items"] if x and x["items"] else 0.0
    request_size, trace_size = mean("RequestData"), mean("MessageData") or mean("RequestData")
    requests = executions * HOST_ITEMS_PER_INVOCATION["requests"]
    traces = executions * HOST_ITEMS_PER_INVOCATION["traces"] + log_records["items"]
    return {"requests": requests, "traces": traces, "copied_log_lines": log_records["items"],
            "bytes": requests * request_size + traces * trace_size}


def per_event(row: dict, include_host: bool = True) -> dict:
    """The per-event inputs of bench.costmodel from one measured configuration."""
    n = row["events"]
    telemetry = row["worker_telemetry_bytes"] + (row["host_telemetry"]["bytes"] if include_host else 0)
    return {"execution_s": row["execution_s"] / n, "executions": row["executions"] / n,
            "storage": {k: v / n for k, v in row["storage"].items()},
            "speech_audio_s": row["speech_audio_s"] / n, "telemetry_bytes": telemetry / n,
            "preservica_requests": row["preservica_requests"] / n,
            "billed_isolated_s": costmodel.isolated_seconds(row["invocation_s"]) / n,
            **{k: row["ai"][k] / n for k in ("ocr_pages", "prompt_tokens", "completion_tokens")},
            "putbacks": row["putbacks"]["events"] / n, "putback": putback_inputs(row)}


def putback_inputs(row: dict) -> dict | None:
    """What waiting cost per event (bench.costmodel's inputs; included in the configuration's own): the first
    look's invocations, seconds, storage operations and telemetry, the host's items estimated as above."""
    p, n = row["putbacks"], row["events"]
    if not p["messages"]:
        return None
    tel = p["telemetry"]
    host = _host_estimate(tel, p["invocations"], tel.get("MessageData", {"items": 0, "bytes": 0}))
    return {"execution_s": p["execution_s"] / n, "executions": p["invocations"] / n,
            "storage": {k: v / n for k, v in p["storage"].items()},
            "telemetry_bytes": (sum(x["bytes"] for x in tel.values()) + host["bytes"]) / n}


# ---- the world: Azurite, the doubles, the settings ---------------------------------------------------

class World:
    """Preservica, Teams, catalogue, relay and Speech doubles in this process, and the app's settings."""

    def __init__(self, conn: str, tmp):
        import secrets
        # Fresh references on every World: what an earlier run against the same Azurite kept (journal rows,
        # OCR text, drafts) never belongs to this one.
        self.conn, self.tmp, self._stack, self._assets = conn, tmp, None, secrets.randbelow(10 ** 8) * 10 ** 4

    def __enter__(self) -> World:
        from contextlib import ExitStack

        from hookops.doubles.preservica import PreservicaDouble
        from hookops.doubles.receivers import CatalogueDouble, RelayReceiver, TeamsDouble
        from hookops.doubles.speech import SpeechDouble
        self._stack = ExitStack()
        enter = self._stack.enter_context
        self.pres = enter(PreservicaDouble(username="u", password="p", tenant="T"))
        self.teams, self.cat, self.relay = enter(TeamsDouble()), enter(CatalogueDouble()), enter(RelayReceiver())
        import trustme

        from bench import cost_ai
        ca = trustme.CA()   # one CA for every HTTPS double, so one bundle trusts them all
        self.speech = enter(SpeechDouble(key="cost-key", ca=ca))
        ai_settings = cost_ai.enter_doubles(enter, ca)
        self.speech.set_phrases([(0, 1500, "Good morning."), (1600, 900, "Today: tides.")])
        self._saved = dict(os.environ)
        os.environ.update({
            "AzureWebJobsStorage": self.conn, "PRESERVICA_WEBHOOK_SECRET": SECRET,
            "PRESERVICA_SERVER": self.pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
            "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http", "PRESERVICA_MAX_RPS": "100000",
            "TEAMS_WEBHOOK_URL": self.teams.url, "CATALOGUE_URL_TEMPLATE": self.cat.url_template,
            "CATALOGUE_SCHEMA": SCHEMA, "RELAY_URL": self.relay.url, "RELAY_SECRET": self.relay.secret,
            "SPEECH_ENDPOINT": self.speech.endpoint, "SPEECH_KEY": "cost-key",
            "REQUESTS_CA_BUNDLE": self.speech.ca_bundle, "NO_PROXY": "127.0.0.1,localhost",
            "PUBLISH_RIGHTS": "http://creativecommons.org/licenses/by/4.0/", **ai_settings})
        os.environ.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
        self._cwd = os.getcwd()
        os.chdir(self.tmp)   # no stray credentials.properties for pyPreservica
        from handlers.clients import preservica, shared
        shared.reset_all()
        preservica.forget_client()
        return self

    def __exit__(self, *exc) -> None:
        from handlers.clients import preservica, shared
        os.chdir(self._cwd)
        os.environ.clear()
        os.environ.update(self._saved)
        shared.reset_all()
        preservica.forget_client()
        self._stack.close()

    def refs(self, n: int) -> list[str]:
        """n fresh assets: a thumbnail, a catalogue record, an image and a 2 s recording each (every action
        has something to do)."""
        thumbnail, sheet, talk = _files()
        out = []
        for _ in range(n):
            i = self._assets
            self._assets += 1
            ref = f"00000000-0000-4000-8000-{i:012d}"
            self.pres.add_asset(ref, f"Asset {i}", thumbnail=thumbnail, identifiers={"catalogue": f"C/{i}"},
                                bitstreams=[("sheet.png", sheet, "Access"), ("talk.wav", talk, "Access")])
            self.cat.add_record(f"C/{i}", f"<record xmlns='{SCHEMA}'><id>{i}</id></record>")
            out.append(ref)
        return out


@functools.cache
def _files() -> tuple[bytes, bytes, bytes]:
    """Every asset's thumbnail, image and recording: the same bytes each time, so made once (the 2 s WAV is
    32,000 samples packed in Python, ~28 ms: ~30 s of the row's ~1,000 assets)."""
    from hookops.doubles.preservica import make_png
    from hookops.doubles.speech import make_wav
    return make_png(), make_png(64, 48), make_wav(2.0)


def measure(conn: str, tmp, *, events: int, progress=print) -> dict:
    """Every configuration once with `events` events: {config name: measured row}."""
    from bench.probes import StorageCounter
    counter = StorageCounter(conn).install()
    tel = Telemetry()
    out = {}
    try:
        with World(conn, tmp) as world:
            # Once before measuring: queues, tables and containers exist from then on, as in a deployed app.
            for name, routes in configs():
                run_config(world, name, routes, 2, counter, tel)
            for name, routes in configs():
                row = run_config(world, name, routes, events, counter, tel)
                out[name] = row
                progress(f"  {name}: {row['executions']} executions, {row['execution_s']:.2f} s, "
                         f"{sum(row['storage'].values())} storage operations, {row['preservica_requests']} Preservica "
                         f"requests, {row['worker_telemetry_bytes']:,} telemetry bytes from the worker")
    finally:
        counter.remove()
    return out


def row(conn: str, tmp, *, events: int, progress=print) -> dict:
    """Row 10 measured and priced."""
    memory_gb, ready = costmodel.bicep_defaults()
    measured = measure(conn, tmp, events=events, progress=progress)
    return {**costmodel.summarize({k: per_event(v) | {"routes": v["routes"],
                                                      "worker_bytes": v["worker_telemetry_bytes"] / v["events"]}
                                   for k, v in measured.items()}, costmodel.load_prices(), memory_gb, ready),
            "measured": measured}
