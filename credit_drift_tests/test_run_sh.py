"""run.sh picks a supported Python by itself (3.11-3.13): `python3` when it is one, else the
first of python3.13, python3.12, python3.11 on the PATH; `PYTHON=` when given (refused when it
is not supported)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[1] / "run.sh"


def _bin(tmp_path: Path, **links: str) -> Path:
    """A directory of interpreters: name -> target ("unsupported" is a script failing the check)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in links.items():
        path = folder / name
        if target == "unsupported":
            path.write_text("#!/bin/sh\nexit 1\n")  # answers no to the version check
            path.chmod(0o755)
        else:
            path.symlink_to(target)
    return folder


def _which_python(path: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    return subprocess.run(
        ["bash", str(RUN_SH), "python"],
        env={**clean, "PATH": path, **env},
        capture_output=True,
        text=True,
    )


def test_python3_is_taken_when_supported(tmp_path):
    folder = _bin(tmp_path, python3=sys.executable, **{"python3.12": sys.executable})
    out = _which_python(f"{folder}:/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{folder}/python3 Python 3.")


def test_an_unsupported_python3_is_passed_over_for_a_versioned_one(tmp_path):
    folder = _bin(tmp_path, python3="unsupported", **{"python3.12": sys.executable})
    if any(Path(d, "python3.13").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a system python3.13 comes first")
    out = _which_python(f"{folder}:/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{folder}/python3.12 ")


def test_python_variable_wins_and_is_checked(tmp_path):
    folder = _bin(tmp_path, python3="unsupported", mine=sys.executable)
    out = _which_python("/usr/bin:/bin", PYTHON=str(folder / "mine"))
    assert out.returncode == 0 and out.stdout.startswith(f"{folder}/mine ")
    out = _which_python("/usr/bin:/bin", PYTHON=str(folder / "python3"))
    assert out.returncode == 2
    assert "is not Python 3.11, 3.12 or 3.13" in out.stderr


def test_unknown_command_prints_usage():
    out = subprocess.run(["bash", str(RUN_SH), "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("usage: ./run.sh demo|ui|cli|test")
