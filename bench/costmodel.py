"""What a million events cost: measured per-event inputs times the prices in bench/prices.toml. Pure.

Inputs (per event, from bench/cost_row.py): execution seconds, executions, storage operations by
service and operation, Speech audio seconds, telemetry bytes. Billing rules used:
- Flex Consumption on demand bills instance memory (GB, the Bicep's `instanceMemoryMB` / 1024) times the time
  an instance is executing, and each execution (learn.microsoft.com, "Estimating consumption-based costs",
  Flex Consumption billing modes). Free grants are left out: a million events is a rate, not a month.
- Always-ready instances bill their memory all the time (the baseline): a monthly figure, not per event.
- Storage bills each operation by service and class (the Azure Storage pricing pages); which queue and blob
  operation falls in which class is inferred from those pages' operation lists (see `storage_class`).
- Flex Consumption bills an instance's activity period at least 1,000 ms, then rounded up to 100 ms
  (learn.microsoft.com, "Azure Functions Flex Consumption plan hosting", Billing): `isolated_seconds` is the
  billed time if every invocation were an activity period of its own (sparse traffic), the upper bound of
  the execution line; the measured sum is the lower (a busy instance, its invocations back to back).
- Document Intelligence bills analysed pages (each image one page, each PDF page one page: learn.microsoft.com,
  Document Intelligence "Service quotas and limits", Billing); Azure OpenAI input and output tokens apart.
- Log Analytics bills ingested GB (10^9 bytes): the telemetry bytes are what the exporter's envelopes weigh
  as JSON; the billed size is computed from stored columns and is usually smaller (learn.microsoft.com,
  "Azure Monitor Logs cost calculations": "around 25 percent less"), so this is an upper bound.
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

PRICES = Path(__file__).with_name("prices.toml")
MILLION = 1_000_000
SECONDS_PER_MONTH = 730 * 3600   # the 730-hour month Azure's calculators use (inferred)


def load_prices(path: Path = PRICES) -> dict:
    doc = tomllib.loads(path.read_text())
    return {k: v for k, v in doc.items() if isinstance(v, dict)}


def storage_class(service: str, operation: str) -> str | None:
    """The price key of one storage operation as bench.probes.StorageCounter names it; None: not storage."""
    op = operation.split(" (")[0] if not operation.startswith("receive (empty)") else "receive"
    if service == "table":
        return "table_transactions"
    if service == "queue":
        return "queue_class2" if op in ("receive", "peek", "get queue") else "queue_class1"
    if service == "blob":
        verb = op.split(" ")[0]
        if verb in ("put", "create"):
            return "blob_write"
        if verb == "delete":
            return "blob_other"
        return "blob_read"
    return None


def lines(per_event: dict, prices: dict, memory_gb: float) -> list[dict]:
    """The cost lines of a million events: [{line, quantity, unit, usd, price_status}], largest first.

    per_event: {"execution_s", "executions", "storage": {"service|operation": n}, "speech_audio_s",
                "telemetry_bytes"}."""
    def price(key):
        return prices[key]["usd"], prices[key]["status"]

    out = []

    def add(name, key, quantity, unit, divisor):
        usd, status = price(key)
        out.append({"line": name, "price": key, "quantity": quantity, "unit": unit,
                    "usd": quantity / divisor * usd, "price_status": status})

    gb_s = per_event["execution_s"] * memory_gb * MILLION
    add("execution time (GB-s, on demand)", "flex_on_demand_gb_s", gb_s, "GB-s", 1)
    add("executions", "flex_on_demand_executions", per_event["executions"] * MILLION, "executions", MILLION)
    by_class: dict[str, float] = {}
    for key, n in per_event["storage"].items():
        service, operation = key.split("|", 1)
        cls = storage_class(service, operation)
        if cls:
            by_class[cls] = by_class.get(cls, 0.0) + n
    for cls, n in sorted(by_class.items()):
        add(f"storage: {prices[cls]['unit'].split(' (')[0].removeprefix('10,000 ')}", cls, n * MILLION,
            "operations", 10_000)
    add("Application Insights ingestion", "log_analytics_gb", per_event["telemetry_bytes"] * MILLION / 1e9, "GB", 1)
    if per_event.get("speech_audio_s"):
        add("Speech audio", "speech_audio_hour", per_event["speech_audio_s"] * MILLION / 3600, "audio hours", 1)
    if per_event.get("ocr_pages"):
        add("Document Intelligence read pages", "docintel_read_pages", per_event["ocr_pages"] * MILLION, "pages",
            1000)
    if per_event.get("prompt_tokens") or per_event.get("completion_tokens"):
        add("Azure OpenAI input tokens", "openai_input_tokens", per_event["prompt_tokens"] * MILLION, "tokens",
            MILLION)
        add("Azure OpenAI output tokens", "openai_output_tokens", per_event["completion_tokens"] * MILLION, "tokens",
            MILLION)
    return sorted(out, key=lambda x: -x["usd"])


def isolated_seconds(invocations: list[float]) -> float:
    """Billed seconds if each invocation were its own activity period: at least 1 s, else up to the next 0.1 s."""
    return sum(max(1.0, math.ceil(round(t * 10, 6)) / 10) for t in invocations)


def per_million(per_event: dict, prices: dict, memory_gb: float) -> float:
    return sum(x["usd"] for x in lines(per_event, prices, memory_gb))


def always_ready_month(instances: int, memory_gb: float, prices: dict) -> float:
    """The always-ready baseline of one month: paid whether or not any event comes."""
    return instances * memory_gb * SECONDS_PER_MONTH * prices["flex_always_ready_baseline_gb_s"]["usd"]


# ---- row 10 in the table ----------------------------------------------------------------------------------

def summarize(per_events: dict, prices: dict, memory_gb: float, always_ready: int) -> dict:
    """Per configuration ({name: per-event inputs with "routes" and "worker_bytes"}): the cost lines and $ per
    million events; and the always-ready baseline a month."""
    out = {}
    for name, pe in per_events.items():
        line_items = lines(pe, prices, memory_gb)
        worker = pe["worker_bytes"]
        out[name] = {"routes": pe["routes"], "per_event": pe, "lines": line_items,
                     "usd_per_million": sum(x["usd"] for x in line_items),
                     "gb_s_per_event": pe["execution_s"] * memory_gb,
                     "worker_telemetry_bytes_per_event": worker,
                     "host_telemetry_bytes_per_event": pe["telemetry_bytes"] - worker,
                     "storage_per_event": sum(pe["storage"].values()),
                     "usd_per_million_sparse": sparse(pe, prices, memory_gb),
                     "putback_usd_per_million": per_million(pe["putback"], prices, memory_gb)
                     if pe.get("putback") else None}
    unverified = sorted({x["price"] for s in out.values() for x in s["lines"] if x["price_status"] != "read"})
    return {"configs": out, "memory_gb": memory_gb, "always_ready_instances": always_ready,
            "always_ready_usd_per_month": always_ready_month(always_ready, memory_gb, prices),
            "not_read": {k: prices[k]["status"] for k in unverified}}


def sparse(per_event: dict, prices: dict, memory_gb: float) -> float | None:
    """$ per million with every invocation billed as its own activity period (isolated_seconds)."""
    isolated = per_event.get("billed_isolated_s")
    return None if isolated is None else per_million(per_event | {"execution_s": isolated}, prices, memory_gb)


def _ai(pe: dict) -> str:
    """The AI inputs of one configuration's text: pages and tokens per event (one event, one asset)."""
    parts = [f"{pe['ocr_pages']:.1f} pages OCR'd"] if pe.get("ocr_pages") else []
    if pe.get("prompt_tokens"):
        parts.append(f"{pe['prompt_tokens']:,.0f} prompt + {pe['completion_tokens']:,.0f} completion tokens")
    return "".join(f", {p}" for p in parts)


def _putbacks(c: dict) -> str:
    """What waiting for another action cost, within the configuration's figures (bench/cost_host.py)."""
    pe, back = c["per_event"], c["per_event"].get("putback")
    if not back:
        return ""
    return (f"; of it {pe['putbacks']:.2f} put-backs per event (an action waiting for another's outcome: "
            f"{back['executions']:.2f} executions, {sum(back['storage'].values()):.1f} storage operations, "
            f"${c['putback_usd_per_million']:,.2f} per million)")


def bicep_defaults() -> tuple[float, int]:
    """instanceMemoryMB (in GB) and alwaysReadyHttpInstances as bicep/modules/functionapp.bicep sets them."""
    import re
    text = (PRICES.parent.parent / "bicep" / "modules" / "functionapp.bicep").read_text()
    memory = int(re.search(r"^param instanceMemoryMB int = (\d+)", text, re.M)[1])
    ready = int(re.search(r"^param alwaysReadyHttpInstances int = (\d+)", text, re.M)[1])
    return memory / 1024, ready


def render(r: dict, events: int) -> str:
    def usd(x):
        return f"${x:,.2f}"
    configs = r["configs"]
    d = configs["default routes"]
    largest = d["lines"][0]
    each = "; ".join(
        f"{name} {usd(c['usd_per_million'])} (largest: {c['lines'][0]['line']} {usd(c['lines'][0]['usd'])}; "
        f"{c['gb_s_per_event']:.3f} GB-s, {c['per_event']['executions']:.2f} executions, "
        f"{c['storage_per_event']:.1f} storage operations, {c['per_event']['preservica_requests']:.1f} Preservica "
        f"requests, {c['worker_telemetry_bytes_per_event'] + c['host_telemetry_bytes_per_event']:,.0f} telemetry "
        f"bytes" + (f", {c['per_event']['speech_audio_s']:.1f} s of audio" if c["per_event"]["speech_audio_s"] else "")
        + _ai(c["per_event"]) + " per event" + _putbacks(c) + ")" for name, c in configs.items() if name != "default routes")
    lines = ", ".join(f"{x['line']} {usd(x['usd'])}" for x in d["lines"])
    caveat = ", ".join(f"{k} ({v})" for k, v in r["not_read"].items())
    return (
        f"| 10 | What a million events cost: one delivery of {events} events per configuration, each function body "
        f"run in process as the host would over Azurite, storage counted at the clients, telemetry through the "
        f"real exporter's conversion | {usd(d['usd_per_million'])} per million events with the default routes "
        f"(`PRESERVICA_ROUTES={d['routes']}`); {usd(d['usd_per_million_sparse'])} if every invocation were billed "
        f"alone (sparse traffic: 1 s minimum each) | "
        f"always ready: {r['always_ready_instances']} × {r['memory_gb']:g} GB = {usd(r['always_ready_usd_per_month'])}"
        f" a month, events or not | largest line: {largest['line']} | – | Default routes per event: "
        f"{d['gb_s_per_event']:.3f} GB-s, {d['per_event']['executions']:.2f} executions, "
        f"{d['storage_per_event']:.1f} storage operations, {d['worker_telemetry_bytes_per_event']:,.0f} telemetry "
        f"bytes from the worker's exporter + {d['host_telemetry_bytes_per_event']:,.0f} from the host (estimated); "
        f"per million: {lines}. Each action alone (`*=<action>`), per million: {each}. Prices not read on "
        f"Microsoft's page (bench/prices.toml): {caveat or 'none'} |")
