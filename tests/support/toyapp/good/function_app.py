"""A toy app for the runner tests. Queue functions record each call in $TOYAPP_RECORD_DIR; queue names
come from app settings (%TOY_RECORD_QUEUE%, %TOY_FAIL_QUEUE%) so that each test runner has its own."""
import asyncio
import base64
import hashlib
import json
import os
import pathlib

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _record(kind: str, msg: func.QueueMessage) -> None:
    folder = pathlib.Path(os.environ["TOYAPP_RECORD_DIR"])
    entry = {"id": msg.id, "body": base64.b64encode(msg.get_body()).decode(),
             "dequeue_count": msg.dequeue_count, "pop_receipt": msg.pop_receipt,
             "has_times": all([msg.insertion_time, msg.expiration_time, msg.time_next_visible])}
    final = folder / f"{kind}-{msg.id}-{msg.dequeue_count}.json"
    temp = final.with_suffix(".tmp")
    temp.write_text(json.dumps(entry))
    os.replace(temp, final)  # readers never see a half-written record


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    return func.HttpResponse(json.dumps({
        "method": req.method, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        "signature": req.headers.get("Preservica-Signature"),
        "signature_lower": req.headers.get("preservica-signature"),
        "params": dict(req.params), "url": req.url,
    }), mimetype="application/json", headers={"X-Toy": "echo"})


@app.route(route="items/{item_id}", methods=["GET"])
async def item(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(f"item {req.route_params['item_id']}")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret detail that must not reach the caller")


@app.queue_trigger(arg_name="msg", queue_name="%TOY_RECORD_QUEUE%", connection="AzureWebJobsStorage")
def record(msg: func.QueueMessage) -> None:
    _record("record", msg)


@app.queue_trigger(arg_name="msg", queue_name="%TOY_FAIL_QUEUE%", connection="AzureWebJobsStorage")
async def always_fail(msg: func.QueueMessage) -> None:
    _record("fail", msg)
    raise RuntimeError("always fails")
