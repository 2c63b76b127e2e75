"""HTML and JSON out, with the headers every console answer carries. Jinja2 is imported here, on the
first page served: the webhook's cold start never loads it."""
from __future__ import annotations

import json
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
# No script at all; styles only from the served stylesheet (no inline style); forms post to the app.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
                    "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin"}
_lock = threading.Lock()
_env = None


def environment():
    global _env
    if _env is None:
        with _lock:
            if _env is None:
                import jinja2
                _env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return _env


def html(name: str, **context) -> bytes:
    return environment().get_template(name).render(**context).encode("utf-8")


def as_json(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False, default=str, indent=1).encode("utf-8")


def stylesheet() -> bytes:
    return (HERE / "static" / "console.css").read_bytes()
