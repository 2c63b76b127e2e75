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


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports process `pid` listens on, from /proc (Linux: its socket inodes matched against
    /proc/net/tcp's LISTEN rows, state 0A, proc(5)); None where /proc cannot say."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
        rows = [line.split() for name in ("tcp", "tcp6") for line in
                Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]]
    except OSError:
        return None
    return {int(r[1].rsplit(":", 1)[1], 16) for r in rows if r[3] == "0A" and r[9] in inodes}


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
        # A port another process took after free_port() chose it answers too: only ours will do (two test
        # runs on one machine would otherwise share, or one would talk to the other's Azurite).
        ours = listening_ports(self.proc.pid)
        if self.proc.poll() is not None or (ours is not None and not set(self.ports) <= ours):
            self.stop()
            raise PortTaken(f"another process is listening on one of {self.ports}")
        return self

    def stop(self, grace: float = 3.0) -> None:
        # On SIGTERM Azurite closes its three services, each saving its metadata, and logs "... successfully
        # closed" for each (azurite 3.37 dist/src/azurite.js shutdown(); ServerBase.close() awaits afterClose(),
        # which closes the stores). The process then stays while a client keeps a keep-alive connection open
        # (about 20 s here), so once the three lines are logged, or after `grace`, the whole group is killed.
        if self.proc and self.proc.poll() is None:
            log = self.location / "azurite.log"
            seen = log.stat().st_size if log.exists() else 0
            self.proc.terminate()
            deadline = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < deadline and not _closed(log, seen):
                time.sleep(0.02)
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Azurite:
        return self if self.proc else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _closed(log: Path, start: int) -> bool:
    """Whether Azurite logged all three services closed after byte `start` of its log."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().count(b"successfully closed") >= 3
    except OSError:
        return False


class PortTaken(RuntimeError):
    pass


def on_free_ports(location: Path) -> Azurite:
    """An Azurite (not yet started) on three ports free now; `start_on_free_ports` also retries a taken one."""
    return Azurite(location, (free_port(), free_port(), free_port()))


def start_on_free_ports(location: Path, tries: int = 5) -> Azurite:
    """A started Azurite on free ports, choosing again when another process took one meanwhile (PortTaken,
    or Azurite exiting on a port it could not bind)."""
    for _ in range(tries - 1):
        try:
            return on_free_ports(location).start()
        except RuntimeError:
            pass
    return on_free_ports(location).start()
