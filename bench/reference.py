"""The reference receiver: pyPreservica's `WebHookHandler`, served the way its documentation shows
(`HTTPServer((BIND_HOST, PORT), MyWebHook)`, `httpd.secret_key = ...`, `serve_forever()`), with a
`do_WORK` that performs the same thumbnail action as the app: per event `EntityAPI.asset(ref)`,
`EntityAPI.thumbnail(asset, file)` (the documentation's own example), then the image into Blob Storage.

One difference in the reference's favour: the documentation's example builds `EntityAPI()` inside
`do_WORK` (a login and two more calls per delivery); here one client is built at start and reused.

    python -m bench.reference --preservica 127.0.0.1:PORT --storage CONN [--server http|threading]

Commands (JSON lines on stdin): {"cmd": "stats"}. Exits when stdin closes.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
from http.server import HTTPServer, ThreadingHTTPServer
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings
from pyPreservica import EntityAPI, WebHookHandler

from bench.common import PASSWORD, SECRET, TENANT, USER, serve_commands

CONTAINER = "reference-thumbnails"
counts = {"deliveries": 0, "events": 0, "failed": 0}
_lock = threading.Lock()


def make_handler(client: EntityAPI, blobs: BlobServiceClient):
    class BenchWebHook(WebHookHandler):
        def do_WORK(self, json_payload):
            try:
                with tempfile.TemporaryDirectory(prefix="ref-thumb-") as tmp:
                    for reference in list(json_payload["events"]):
                        ref = reference["entityRef"]
                        asset = client.asset(ref)
                        path = client.thumbnail(asset, os.path.join(tmp, f"{ref}.jpg"))
                        if path:
                            blobs.get_blob_client(CONTAINER, f"{ref}.png").upload_blob(
                                Path(path).read_bytes(), overwrite=True,
                                content_settings=ContentSettings(content_type="image/png"))
                        with _lock:
                            counts["events"] += 1
            except Exception:
                with _lock:
                    counts["failed"] += 1
                raise
            with _lock:
                counts["deliveries"] += 1

    return BenchWebHook


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preservica", required=True, help="host:port of the Preservica double")
    p.add_argument("--storage", required=True, help="Azurite connection string")
    p.add_argument("--server", choices=("http", "threading"), default="http",
                   help="http.server class: HTTPServer (as documented) or ThreadingHTTPServer")
    a = p.parse_args()
    client = EntityAPI(username=USER, password=PASSWORD, tenant=TENANT, server=a.preservica, protocol="http",
                       credentials_path=os.path.join(tempfile.gettempdir(), "no-credentials.properties"))
    blobs = BlobServiceClient.from_connection_string(a.storage)
    try:
        blobs.create_container(CONTAINER)
    except ResourceExistsError:
        pass
    server_class = HTTPServer if a.server == "http" else ThreadingHTTPServer
    httpd = server_class(("127.0.0.1", 0), make_handler(client, blobs))
    httpd.secret_key = SECRET
    thread = threading.Thread(target=httpd.serve_forever, name="reference-http", daemon=True)
    thread.start()
    try:
        serve_commands({"stats": lambda: dict(counts)},
                       {"port": httpd.server_address[1], "server_class": server_class.__name__,
                        "listen_backlog": httpd.request_queue_size})
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


if __name__ == "__main__":
    main()
