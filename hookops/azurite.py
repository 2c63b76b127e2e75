"""Start and stop Azurite (the project's pinned copy under node_modules) for `run`, tests and benchmarks."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from handlers.clients.storage import azurite_connection_string

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = (10000, 10001, 10002)  # blob, queue, table: what `UseDevelopmentStorage=true` means


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(blob: int, queue: int, table: int, host: str = "127.0.0.1") -> str:
    return azurite_connection_string(blob, queue, table, host)


def executable() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise RuntimeError("Azurite is not installed: run `npm ci` in the project folder (make does it for you).")
    return found


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Azurite:
    """One Azurite process. `ports` are blob, queue, table."""
    location: Path
    ports: tuple[int, int, int]
    proc: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    def start(self, timeout: float = 30.0) -> Azurite:
        self.location.mkdir(parents=True, exist_ok=True)
        blob, queue, table = self.ports
        cmd = [executable(), "--silent", "--skipApiVersionCheck", "--location", str(self.location),
               "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
               "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)]
        log = open(self.location / "azurite.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not all(_listening(p) for p in self.ports):
            if self.proc.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.proc.returncode}; see {self.location / 'azurite.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen on {self.ports} within {timeout:.0f}s")
            time.sleep(0.05)
        return self

    def stop(self, grace: float = 3.0) -> None:
        # Azurite waits for idle keep-alive connections before exiting on SIGTERM; its data is
        # already on disk, so after a short grace the whole process group is killed.
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def on_free_ports(location: Path) -> Azurite:
    return Azurite(location, (free_port(), free_port(), free_port()))


def ports_in_use(ports=DEFAULT_PORTS) -> bool:
    return all(_listening(p) for p in ports)
