"""What the HTTPS doubles (Key Vault, Document Intelligence, Speech, Azure OpenAI) share: a threaded server on
127.0.0.1 that does its TLS handshake in the worker thread, and a throw-away CA whose certificate a client is
told to trust. What the Azure AI service doubles share besides is in aiservice.py."""
from __future__ import annotations

import json
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, handler, double, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", port), handler)
        self.double = double
        if tls:
            # Handshake lazily in the worker thread so a stalled client cannot block accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        # Short poll so shutdown() returns quickly.
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # hang-ups and failed handshakes are expected
            super().handle_error(request, client_address)


class Certificates:
    """A CA, its PEM in a temporary folder (`ca_pem_path`), and a server context for 127.0.0.1/localhost."""

    def __init__(self, ca: trustme.CA, prefix: str):
        self.ca = ca
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.ca_pem_path = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_pem_path)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(self.context)

    def cleanup(self) -> None:
        self._tmp.cleanup()


class HttpsDouble:
    """Lifecycle of an HTTPS double: `start`/`stop` (or `with`), `endpoint`, `ca_bundle`. A subclass sets
    HANDLER (its request handler class) and PREFIX (its temporary folder's), and `_ca` before start."""
    HANDLER: type
    PREFIX = "double-"
    _ca: trustme.CA
    _server: Server | None = None
    _certs: Certificates | None = None

    def start(self):
        self._certs = Certificates(self._ca, self.PREFIX)
        self._server = Server(0, self.HANDLER, self, self._certs.context)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.close()
            self._server = None
        if self._certs:
            self._certs.cleanup()
            self._certs = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def ca_bundle(self) -> str:
        """The CA certificate (PEM) a client must trust (REQUESTS_CA_BUNDLE, SSL_CERT_FILE)."""
        return self._certs.ca_pem_path

    @property
    def ca(self) -> trustme.CA:
        """Its CA: give it to another double (`ca=`) so that one CA bundle trusts both."""
        return self._ca


class JsonHandler(BaseHTTPRequestHandler):
    """A double's request handler: quiet, answering JSON (or nothing) with the headers given."""
    timeout = 30

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict | None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
