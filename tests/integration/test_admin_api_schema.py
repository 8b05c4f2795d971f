"""The admin API against its own OpenAPI document, by schemathesis (property-based): a
bounded run, positive and negative cases over every operation.

`ucaas-sync run` (admin only) serves it as an operator starts it, on SQLite and on
PostgreSQL (where a server answers) with a few commands queued and the sandbox as UCaaS
(so /readyz is ready). With the operator token, every answer must be no 5xx, a
documented status, of the documented content type and schema; without a token every
answer behind it is a 401. A larger run, by hand:

    st run http://127.0.0.1:8080/openapi.json -H "Authorization: Bearer $TOKEN" \\
      --checks not_a_server_error,status_code_conformance,content_type_conformance,\\
    response_schema_conformance --max-examples 500 -w 1
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.devtools import sample_commands as c
from service.devtools.service_processes import BIN
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import accept, db_upgrade, dispatch_env

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed")
from schemathesis import GenerationMode  # noqa: E402 - after the skip
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

TOKEN = "schema-operator-token-6b1f0a"
ADMIN_URL = re.compile(r"admin API on (http://127\.0\.0\.1:\d+)")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 150  # per generation mode, over all operations: about 20 s here
OPEN = {"/healthz", "/readyz"}
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases each run: a failure here is a regression
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def admin_url(tmp_path: Path, sandbox: SandboxAdmin, database_url: str) -> Iterator[str]:
    # SQLite and PostgreSQL: a text PostgreSQL cannot store (a NUL) answered 500 there only
    env = dispatch_env(database_url, sandbox.base_url)
    env.update(UCAAS_SYNC_ADMIN_TOKEN=TOKEN, UCAAS_SYNC_LOG_FORMAT="console")
    db_upgrade(env, tmp_path)
    accept(env["UCAAS_SYNC_DATABASE_URL"], [[c.create_customer(f"CRM-S{n}")] for n in range(3)])
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [str(BIN / "ucaas-sync"), "run", "--no-consumers", "--no-dispatcher", "--no-poller"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := ADMIN_URL.search(log.read_text(errors="replace"))):
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield found.group(1)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]  # no 500 was logged either
    finally:
        run.terminate()
        run.wait(timeout=30)


def load(url: str) -> Any:
    return schemathesis.openapi.from_url(
        f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )


@pytest.mark.timeout(240)
def test_every_answer_is_documented(admin_url: str) -> None:
    schema = load(admin_url)
    cases = st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    seen: dict[int, int] = {}

    @BOUNDED
    @given(case=cases)
    def check(case: Any) -> None:
        # the security scheme is a parameter to schemathesis, which it fills with
        # made-up tokens: every case goes with the real one, to reach the handlers
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
        answer = case.call_and_validate(base_url=admin_url, checks=CHECKS, timeout=15)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1

    check()
    print(f"\nstatus codes seen: {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= EXAMPLES
    assert {200, 422} <= set(seen), seen  # both kinds of case reached the handlers
    assert 401 not in seen, seen


@pytest.mark.timeout(240)
def test_without_a_token_every_answer_is_401(admin_url: str) -> None:
    schema = load(admin_url)
    guarded = schema.exclude(path=sorted(OPEN))
    seen: dict[int, int] = {}

    @BOUNDED
    @given(case=guarded.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        answer = case.call(base_url=admin_url, timeout=15)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code == 401, (case.method, case.path, answer.text)
        assert answer.json()["detail"].startswith("a valid bearer token is needed")

    check()
    assert seen == {401: seen[401]} and seen[401] >= EXAMPLES // 2
    # and the open ones stay open
    for path in OPEN:
        assert httpx.get(f"{admin_url}{path}").status_code == 200
