"""run.sh picks a supported Python by itself (3.11-3.13): `python3` when it is one, else the
first of python3.13, python3.12, python3.11 on the PATH; `PYTHON=` when given (refused when it
is not supported). On AMD Zen 4 it sends numpy to its AVX2 sort."""

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


ZEN4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: fpu avx2 avx512f\n"
ZEN3 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nflags\t\t: fpu avx2 fma\n"
ZEN5 = "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nflags\t\t: fpu avx2 avx512f\n"
INTEL = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nflags\t\t: fpu avx2 avx512f\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (ZEN4, "NPY_DISABLE_CPU_FEATURES=X86_V4"),
        (ZEN3, "NPY_DISABLE_CPU_FEATURES unset"),
        (ZEN5, "NPY_DISABLE_CPU_FEATURES unset"),
        (INTEL, "NPY_DISABLE_CPU_FEATURES unset"),
    ],
)
def test_numpy_is_sent_to_its_avx2_sort_on_zen4_only(tmp_path, cpuinfo, expected):
    """On AMD Zen 4 numpy's AVX-512 sort is ~5x slower than its AVX2 one (README,
    "Performance on AMD Zen 4"): run.sh turns it off there and nowhere else."""
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "NPY_DISABLE_CPU_FEATURES")}
    # a fresh virtual environment's place: numpy 2.4 or later, whose name is X86_V4
    env = {**clean, "CREDIT_DRIFT_CPUINFO": str(info), "CREDIT_DRIFT_VENV": str(tmp_path / "venv")}
    out = subprocess.run(["bash", str(RUN_SH), "python"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == expected


def test_the_users_own_numpy_cpu_setting_wins(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN4)
    for mine in ("", "AVX512_ICL"):
        env = {**os.environ, "CREDIT_DRIFT_CPUINFO": str(info), "NPY_DISABLE_CPU_FEATURES": mine}
        out = subprocess.run(
            ["bash", str(RUN_SH), "python"], env=env, capture_output=True, text=True
        )
        assert out.stdout.splitlines()[-1] == f"NPY_DISABLE_CPU_FEATURES={mine}"


def test_numpy_before_2_4_gets_its_own_name_for_the_target(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN4)
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.12" / "site-packages" / "numpy-2.3.5.dist-info").mkdir(parents=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "NPY_DISABLE_CPU_FEATURES")}
    env = {**clean, "CREDIT_DRIFT_CPUINFO": str(info), "CREDIT_DRIFT_VENV": str(venv)}
    out = subprocess.run(["bash", str(RUN_SH), "python"], env=env, capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "NPY_DISABLE_CPU_FEATURES=AVX512_SKX"
