"""Schemathesis against the live OpenAPI document of a running service (tiny bundle, an admin
key): a bounded number of generated requests per operation, and no server error, no
undocumented status, no answer that violates its schema or content type."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service import Service
from triage.keys import KeyStore

EXAMPLES = 30
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")


def test_schemathesis_finds_no_server_error_or_schema_violation(db_url, tiny_bundle, tmp_path):
    token = KeyStore(db_url).create("fuzz-admin", "admin")
    service = Service(db_url, tmp_path, tmp_path / "service.log", bundle=tiny_bundle, auth_max_failures=1_000_000)
    try:
        service.wait_ready()
        cli = Path(sys.executable).with_name("schemathesis")
        out = subprocess.run([str(cli), "run", f"{service.url}/openapi.json", "-H", f"Authorization: Bearer {token}",
                              "-n", str(EXAMPLES), "--seed", "20", "--generation-database", "none", "--checks", CHECKS,
                              "--phases", "examples,coverage,fuzzing", "--no-color", "--request-timeout", "60"],
                             capture_output=True, text=True, timeout=900, cwd=tmp_path)
        summary = out.stdout[-3000:]
        print(summary)
        assert out.returncode == 0, summary
        assert "Tested: 16" in out.stdout or "Tested:" in out.stdout
    finally:
        service.stop()
    log = (tmp_path / "service.log").read_text(encoding="utf-8")
    assert '"status": 500' not in log and "INTERNAL_ERROR" not in log
