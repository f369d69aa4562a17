"""`meshmart status | head`: a reader that goes away ends the command quietly, not with a
BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mesh.paths import REPO_ROOT


def test_a_closed_stdout_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command prints
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mesh.cli", "status", "--run-dir", str(tmp_path)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 1
