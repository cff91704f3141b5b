"""Running the service as real processes for the tests that need them (several workers,
kill -9): ``python -m api`` on a free loopback port with the tiny bundle and hashing encoder."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bundle_copies(tiny_bundle: Path, models: Path, names: list[str]) -> Path:
    """Copies of the tiny bundle under ``names`` (each its own version), CURRENT = the first."""
    models.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(tiny_bundle, models / name)
        path = models / name / "manifest.json"           # not hashed: a copy may take its folder's name
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "bundle_version": name}),
                        encoding="utf-8")
    (models / "CURRENT").write_text(names[0] + "\n", encoding="utf-8")
    return models


class Service:
    def __init__(self, database_url: str, models: Path, log: Path, workers: int = 1, bundle: Path | None = None,
                 **settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TRIAGE_DATABASE_URL": database_url, "TRIAGE_ENCODER": "hashing-test",
               "TRIAGE_MODELS_DIR": str(models), "PYTHONPATH": str(ROOT)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update({f"TRIAGE_{k.upper()}": str(v) for k, v in settings.items()})
        args = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        if bundle is not None:
            args += ["--bundle", str(bundle)]
        self.log = log
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                r = httpx.get(self.url + "/readyz", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9 the whole process group (every worker)."""
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
