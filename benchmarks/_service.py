"""Start the service in a child process on a free loopback port, for benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(bundle: Path | None = None, env: dict[str, str] | None = None,
                    timeout: float = 600) -> Iterator[str]:
    """Yield the base URL once ``/readyz`` answers 200; stop the service afterwards."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "api", "--port", str(port), "--log-level", "warning"]
    if bundle:
        cmd += ["--bundle", str(bundle)]
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    if client.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("the service did not become ready")
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
