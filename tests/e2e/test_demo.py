"""`ucaas-sync demo` end to end, as a newcomer runs it: no configuration, its own broker
(KAFKA_BOOTSTRAP_SERVERS unset), sandbox and feed server; the scenario applied; a summary
in which every number UCaaS has equals the number the events asked for; a clean exit
with nothing left running."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import BIN

ROW = re.compile(r"^│ (?P<what>[^│]+?) +│ +(?P<asked>[^│]+?) │ +(?P<found>[^│]+?) │ (?P<mark>.) │$")
# Seeded scenario: 2 companies, 50 joiners, 2 leavers, a leave and a return, a feed of
# 9 meetings of which 1 is cancelled.
EXPECTED = {
    "customers": "2",
    "subscriptions (seats)": "2 (60)",
    "users": "50",
    "active": "48",
    "suspended (on leave or left)": "2",
    "profiles as last sent by HR": "50",
    "meeting licences": "48",
    "meetings scheduled (upcoming)": "8",
    "meetings cancelled": "1",
    # read back from the results topic: one distinct id per command done
    "results published (one id per command done)": "123",
}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_naming(needles: list[str]) -> list[str]:
    """Command lines of live processes that mention any of `needles` (ports, here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(cmdline)
    return found


@pytest.mark.timeout(300)
def test_demo_applies_the_scenario_and_ends_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "UCAAS_SYNC_"))}
    env.update({"COLUMNS": "200", "PATH": f"{BIN}:{env.get('PATH', '')}"})
    began = time.monotonic()
    done = subprocess.run(
        [str(BIN / "ucaas-sync"), "demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,  # its .ucaas-sync/demo/ is this test's own
        env=env,
    )
    took = time.monotonic() - began
    out = done.stdout
    print(out[-4000:], f"\nwall time {took:.1f} s")
    assert done.returncode == 0, f"{out[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr + out

    rows = {
        m["what"].strip(): (m["asked"].strip(), m["found"].strip(), m["mark"])
        for line in out.splitlines()
        if (m := ROW.match(line.strip())) and m["what"].strip() in EXPECTED
    }
    assert set(rows) == set(EXPECTED)
    for what, (asked, found, mark) in rows.items():
        assert (asked, found, mark) == (EXPECTED[what], EXPECTED[what], "✓"), what
    assert "10 of 10 checks match" in out
    assert "62 events published, 62 taken, 0 dead-lettered" in out
    assert "Where to look" in out
    assert (tmp_path / ".ucaas-sync" / "demo" / "demo.db").is_file()

    # Nothing it started survives: the ports it printed are closed, and no process
    # names them.
    ports = [
        int(p)
        for p in re.findall(
            r"(?:Kafka \(\w+\) at|sandbox at|feed at) (?:http://)?127\.0\.0\.1:(\d+)", out
        )
    ]
    assert len(ports) == 3, out[:1000]
    assert not [p for p in ports if listening(p)]
    assert processes_naming([f"127.0.0.1:{p}" for p in ports] + [f"--port {ports[1]}"]) == []
