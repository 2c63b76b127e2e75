"""Row 5: intake CPU per delivery, `intake.handle` called in process with storage stubbed, against an HMAC of the
same bytes."""
from __future__ import annotations

import hmac
import time

from bench.common import SECRET, delivery_body, median, ref
from bench.pipeline import environment, new_subscription, now_ms, signed_request


class _NullStorage:
    def send(self, queue_name, message):
        pass

    def put_blob(self, *args, **kwargs):
        pass


def _per_call_us(fn, iterations: int, repeats: int = 5) -> float:
    """Microseconds per call: the best of `repeats` timings of iterations/repeats calls each (as
    timeit advises: the others measure the machine's other work, not this code)."""
    n = max(1, iterations // repeats)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def intake_cpu(env: dict, *, iterations: int, runs: int, sizes=(1, 100), progress=print) -> dict:
    from handlers import intake
    from handlers.clients import storage
    from handlers.core import envelope, messages, signature
    out = {}
    key = SECRET.encode()
    with environment(env):
        real_default = storage.default
        storage.default = lambda: _NullStorage()
        try:
            for n in sizes:
                body = delivery_body([ref(i) for i in range(n)], new_subscription(), now_ms())
                req = signed_request(body)
                header = signature.sign(SECRET, body)
                message = b"preservica-webhook-auth" + body
                assert intake.handle(req).status_code == 200

                # Timed in this iteration only: each binds this size's body as a default argument.
                def pure(body=body, header=header):
                    signature.verify([SECRET], body, header)
                    did = envelope.delivery_id(body)
                    _, text = envelope.parse_delivery(body)
                    messages.intake_message(did, "2026-01-01T00:00:00.000+00:00", text)

                def handle(req=req):
                    return intake.handle(req)

                def floor(message=message):
                    return hmac.digest(key, message, "sha256")
                its = max(10, iterations // max(1, n // 10))    # fewer iterations for bigger bodies
                samples = {"handle": [], "pure": [], "hmac": [], "ratio": [], "pure_ratio": []}
                for _ in range(runs):
                    h, p, f = _per_call_us(handle, its), _per_call_us(pure, its), _per_call_us(floor, its)
                    for k, v in (("handle", h), ("pure", p), ("hmac", f), ("ratio", h / f), ("pure_ratio", p / f)):
                        samples[k].append(v)
                out[n] = {"events": n, "body_bytes": len(body), "iterations": its,
                          **{f"{k}_us" if "ratio" not in k else k: median(v) for k, v in samples.items()}}
                progress(f"  intake CPU, {n} event(s) ({len(body)} B): intake.handle {out[n]['handle_us']:.1f} us, "
                         f"verify+parse+envelope {out[n]['pure_us']:.1f} us, HMAC {out[n]['hmac_us']:.2f} us")
        finally:
            storage.default = real_default
    return {"iterations": iterations, "runs": runs, "sizes": out}
