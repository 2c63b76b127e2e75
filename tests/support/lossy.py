"""A write whose answer never comes: a TCP proxy in front of one Azurite endpoint that resets the client's connection
on a chosen request, either before passing it on (the service never sees it: a keep-alive connection the far end
had closed as it was sent) or after the service answered (it applied the write: the answer is lost on the way
back). The client sees a connection reset either way and cannot tell which."""
from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Callable

from hookops import azurite as az


class LostAnswers:
    """`lose(request)` (the bytes of one whole request, headers and body) picks the requests that get no answer,
    `times` of them in all; `applied`: whether the service gets them first. `requests` holds the first line of
    every request the service got, in order."""

    def __init__(self, upstream_port: int, lose: Callable[[bytes], bool], times: int = 1, applied: bool = True):
        self.upstream, self.lose, self.left, self.applied = upstream_port, lose, times, applied
        self.lost = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", az.free_port()))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def connection_string(self, blob: int, queue: int) -> str:
        """Azurite's connection string with its table endpoint through this proxy."""
        return az.connection_string(blob, queue, self.port)

    def __enter__(self) -> LostAnswers:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()
        for t in self._threads:
            t.join(10)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._relay, client)

    def _relay(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.upstream))
        pending, losing = b"", False   # a request not yet whole; whether the one sent gets no answer
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server:
                        if losing:   # the service has answered: the answer is lost
                            return _reset(client)
                        client.sendall(data)
                        continue
                    pending += data
                    if (whole := _whole(pending)) is None:
                        continue
                    request, pending = pending[:whole], pending[whole:]
                    losing = self._take(request)
                    if losing and not self.applied:
                        return _reset(client)
                    with self._lock:
                        self.requests.append(request.split(b"\r\n", 1)[0].decode("latin-1"))
                    server.sendall(request)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _take(self, request: bytes) -> bool:
        with self._lock:
            if self.left > 0 and self.lose(request):
                self.left -= 1
                self.lost += 1
                return True
            return False


def _whole(data: bytes) -> int | None:
    """The length of the first whole request in `data` (the SDKs send a Content-Length, never chunked), or None."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    end = len(head) + len(sep) + length
    return end if len(data) >= end else None


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close with RST
