"""`ucaas-sync plan` and `ucaas-sync asyncapi` as an operator runs them: real processes.

Every run starts at once (each process pays ~1 s of imports), and the tests read the
finished results.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.intake.plan import PlanError, plan_event, read
from tests.support.processes import BIN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
HR_EXAMPLE = EXAMPLES / "hr-user-joined.json"
CRM_EXAMPLE = EXAMPLES / "crm-company-created.json"
WHEN = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
POLICY = """
[[rules]]
department = "sales"
apps = ["vc", "wb"]
"""


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stdout.splitlines()]


def _example(path: Path = HR_EXAMPLE, **data: Any) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    document["data"].update(data)
    return document


def _inputs(folder: Path) -> dict[str, tuple[list[str], bytes | None, dict[str, str]]]:
    """name -> (arguments, the event file's content or None, extra environment)."""
    policy = folder / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    bad_policy = folder / "bad-policy.toml"
    bad_policy.write_text('default_app = ["vc"]\n', encoding="utf-8")
    return {
        "hr": (["plan", "--event", str(HR_EXAMPLE)], None, {}),
        "crm": (["plan", "--event", str(CRM_EXAMPLE)], None, {}),
        "hr-policy": (
            ["plan", "--event", str(HR_EXAMPLE)],
            None,
            {"UCAAS_SYNC_INTAKE_LICENCE_POLICY": str(policy)},
        ),
        "not-json": (["plan"], b'{"specversion": "1.0",', {}),
        "bad-policy": (
            ["plan", "--event", str(HR_EXAMPLE)],
            None,
            {"UCAAS_SYNC_INTAKE_LICENCE_POLICY": str(bad_policy)},
        ),
        "asyncapi": (["asyncapi"], None, {}),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    folder = tmp_path_factory.mktemp("plan")
    base = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    started: dict[str, subprocess.Popen[str]] = {}
    for name, (args, content, env) in _inputs(folder).items():
        if content is not None:
            event = folder / f"{name}.json"
            event.write_bytes(content)
            args = [*args, "--event", str(event)]
        started[name] = subprocess.Popen(
            [str(BIN / "ucaas-sync"), *args],
            cwd=folder,  # no .env of the developer's
            env={**base, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=60)
        results[name] = Run(process.returncode, out, err)
    return results


def test_hr_example_plans_create_then_licence(runs: dict[str, Run]) -> None:
    run = runs["hr"]
    assert (run.code, run.stderr) == (0, "")
    lines = run.lines()
    assert [line["kind"] for line in lines] == ["create_user", "assign_licence"]
    assert all(set(line) == {"kind", "entity", "payload", "event"} for line in lines)
    assert {line["entity"] for line in lines} == {"user:CRM-1001:E1001"}
    assert lines[0]["payload"] == {
        "tenant": "CRM-1001",
        "employee_id": "E1001",
        "profile": {
            "email": "ann.lee@acme.example",
            "first_name": "Ann",
            "last_name": "Lee",
            "department": "Sales",
            "designation": "Sales Director",
        },
    }
    assert lines[1]["payload"] == {"tenant": "CRM-1001", "employee_id": "E1001", "app": "vc"}


def test_plan_follows_the_licence_policy_file(runs: dict[str, Run]) -> None:
    run = runs["hr-policy"]
    assert run.code == 0, run.stderr
    assert [(line["kind"], line["payload"].get("app")) for line in run.lines()] == [
        ("create_user", None),
        ("assign_licence", "vc"),
        ("assign_licence", "wb"),
    ]


def test_crm_example_plans_the_customer(runs: dict[str, Run]) -> None:
    run = runs["crm"]
    assert (run.code, run.stderr) == (0, "")
    [line] = run.lines()
    assert line["kind"] == "create_customer"
    assert line["entity"] == "customer:CRM-1001"
    assert line["payload"]["crm_id"] == "CRM-1001"
    assert line["payload"]["profile"]["customer_name"] == "Acme Robotics"
    assert line["payload"]["profile"]["office_address"]["country"] == "FR"


def test_an_invalid_event_is_one_error_line_and_exit_2(runs: dict[str, Run]) -> None:
    run = runs["not-json"]
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: not_json: ")
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr


def test_a_bad_policy_file_is_one_error_line_and_exit_2(runs: dict[str, Run]) -> None:
    run = runs["bad-policy"]
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert run.stderr.startswith("error: licence policy ")
    assert run.stderr.count("\n") == 1


def test_asyncapi_describes_the_topics_and_schemas(runs: dict[str, Run]) -> None:
    run = runs["asyncapi"]
    assert run.code == 0, run.stderr
    document = orjson.loads(run.stdout)
    assert document["asyncapi"].startswith("3.")
    assert {"hr.events", "crm.events", "hr.events.dlq", "crm.events.dlq"} <= set(
        document["channels"]
    )
    schemas = document["components"]["schemas"]
    assert {"HrUserData", "Company", "Purchase"} <= set(schemas)
    assert "tenant" in schemas["HrUserData"]["properties"]
    assert set(schemas["Purchase"]["properties"]["app"]["enum"]) == {"vc", "wb"}


# -- the same code in-process, for the cases a process per case would make slow -----------
def _plan(document: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    raw = document if isinstance(document, bytes) else orjson.dumps(document)
    return list(plan_event(raw))


def test_effective_dated_plan_says_when() -> None:
    lines = _plan(_example(effective_at=WHEN.isoformat()))
    assert len(lines) == 2
    assert {datetime.fromisoformat(line["not_before"]) for line in lines} == {WHEN}


def test_nothing_to_do_plans_nothing() -> None:
    # plan runs against no prior state: a leaver it has not seen, a partial unknown company
    assert _plan({**_example(), "type": "hr.user.left"}) == []
    partial = {**_example(CRM_EXAMPLE), "type": "crm.company.updated", "data": {"name": "A"}}
    assert _plan(partial) == []


def test_an_unreadable_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"^cannot read .*absent.json: No such file"):
        read(tmp_path / "absent.json")
    with pytest.raises(PlanError, match=r"^cannot read "):
        read(tmp_path)  # a folder


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not_json: "),
        (b"[1, 2, 3]", "not_cloudevent: a JSON list"),
        (b"\xff\xfe\x00", "not_json: "),
        (orjson.dumps({k: v for k, v in _example().items() if k != "id"}), "not_cloudevent: no id"),
        (orjson.dumps({**_example(), "type": "hr.user.promoted"}), "unknown_type: "),
        (orjson.dumps(_example(tenant="")), "invalid_data: tenant"),
        (
            orjson.dumps(_example(name={"givenName": "A" * 51})),
            "invalid_data: name.givenName is longer than the 50",
        ),
    ],
)
def test_plan_errors_in_process(raw: bytes, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        _plan(raw)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
