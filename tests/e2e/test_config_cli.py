"""`ucaas-sync` as an operator runs it with secrets mounted as files: the values are
taken and never printed, and a file that is not there is one line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.processes import BIN


def ucaas_sync(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    return subprocess.run(
        [str(BIN / "ucaas-sync"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**clean, **env},
        check=False,
    )


def test_config_takes_secrets_from_files_and_masks_them(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret-from-file\n", encoding="utf-8")
    done = ucaas_sync(tmp_path, "config", UCAAS_SYNC_UCAAS_ADMIN_PASSWORD_FILE=str(password))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["ucaas_admin_password"] == "**********"
    assert "s3cret-from-file" not in done.stdout + done.stderr


def test_a_missing_secret_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    gone = tmp_path / "no-such-token"
    for command in (["config"], ["status"]):
        done = ucaas_sync(tmp_path, *command, UCAAS_SYNC_ADMIN_TOKEN_FILE=str(gone))
        assert done.returncode == 2
        assert (
            done.stderr == f"error: UCAAS_SYNC_ADMIN_TOKEN_FILE={gone}: No such file or directory\n"
        )
        assert "Traceback" not in done.stderr
