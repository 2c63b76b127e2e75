"""Health: `GET /api/health`, anonymous, for an Application Insights availability test.

Says only whether the app can reach its storage and read its webhook secret: 200 {"status": "ok"} or
503 {"status": "unhealthy"}, no detail an attacker could use (which service, why). The answer is cached
for CACHE_SECONDS, so a flood of probes costs the platform nothing, and each check has DEADLINE seconds:
a storage or Key Vault that does not answer is unhealthy, not a hung probe.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as Late

import azure.functions as func

from .core import settings

log = logging.getLogger(__name__)
bp = func.Blueprint()
ROUTE = "health"
CACHE_SECONDS = 10.0
DEADLINE = 5.0
_lock = threading.Lock()
_last: tuple[float, bool] | None = None
_pool = ThreadPoolExecutor(2, thread_name_prefix="health")


@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    ok = healthy()
    return func.HttpResponse(json.dumps({"status": "ok" if ok else "unhealthy"}), status_code=200 if ok else 503,
                             mimetype="application/json",
                             headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def healthy(now: float | None = None) -> bool:
    global _last
    now = time.monotonic() if now is None else now
    with _lock:  # one check at a time; the others wait for its answer
        if _last is not None and now - _last[0] < CACHE_SECONDS:
            return _last[1]
        checks = [_pool.submit(_storage), _pool.submit(_secret)]
        try:
            ok = all(c.result(timeout=DEADLINE) for c in checks)
        except Late:
            ok = False
            log.warning("health: a check did not answer within %.0f s", DEADLINE)
        _last = (now, ok)
        return ok


def _storage() -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    from .clients.storage import default
    try:
        default().queue(settings.DELIVERY_QUEUE).get_queue_properties()
        return True
    except ResourceNotFoundError:
        return True  # storage answered; the queue is made on first use locally, by Bicep in Azure
    except Exception as exc:  # any failure means unhealthy; the log says which kind, never more
        log.warning("health: storage check failed (%s)", type(exc).__name__)
        return False


def _secret() -> bool:
    from .clients.secrets import default
    try:
        return bool(default().webhook_secrets())
    except Exception as exc:
        log.warning("health: webhook secret check failed (%s)", type(exc).__name__)
        return False
