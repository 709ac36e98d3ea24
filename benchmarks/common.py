"""Shared helpers of the benchmarks: machine description, benchmark data, isolated worker
processes with a timeout and peak-memory measurement, markdown tables.

Every measured method runs in its own child process (the benchmark script re-invoked with
`--worker ...`), so that its peak memory is its own and a hung or killed method (Evidently at
100,000 rows) cannot take the harness with it.

Peak memory is the child's peak resident set size: `VmHWM` from `/proc/<pid>/status`, sampled by
the parent while the child runs and read once more just before the child exits or is killed
(equal to the child's `getrusage(RUSAGE_SELF).ru_maxrss`, which the worker also reports). The
worker also reports its peak RSS just before the measured method starts (inputs loaded), so the
method's own increase is `peak - before`.
"""

import datetime as dt
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: Seed of the reference (training-like) rows; windows use child streams of it.
DATA_SEED = 42
#: Poll interval of the parent while it waits for a worker (seconds).
_POLL_SECONDS = 0.2


# -- machine ------------------------------------------------------------------------------------
def _cpu_model() -> str:
    """The model name, CPU family and whether it has AVX-512 (numpy's sort differs: on AMD
    Zen 4, family 25 with AVX-512, its AVX-512 sort is ~5x slower than its AVX2 one)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    avx512 = "AVX-512" if "avx512f" in fields.get("flags", "").split() else "no AVX-512"
    return (
        f"{fields.get('model name', 'unknown')}, family {fields.get('cpu family', '?')}, {avx512}"
    )


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(extra_packages: Sequence[str] = ()) -> dict[str, str]:
    """What the figures were measured on (no heavy imports: versions come from metadata)."""
    load1, load5, load15 = os.getloadavg()
    info = {
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "nproc": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "RAM": f"{_ram_gib():.1f} GiB",
        "Python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "NPY_DISABLE_CPU_FEATURES": os.environ.get("NPY_DISABLE_CPU_FEATURES", "(unset)"),
        "load average at start (1/5/15 min)": f"{load1:.2f} / {load5:.2f} / {load15:.2f}",
    }
    for dist in ("numpy", "scipy", "pandas", *extra_packages):
        info[dist] = _version(dist)
    return info


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def markdown_kv(info: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


# -- data ---------------------------------------------------------------------------------------
def feature_frame(n_rows: int, stream: int, *, seed: int = DATA_SEED):
    """`n_rows` synthetic Home-Credit-like applications (419 float64 features, NaN shares
    from 0 to ~73%), features only, from child stream `stream` of `seed` (0 = the reference
    stream; windows use other streams, so they are unseen rows of the same distribution)."""
    from credit_drift.data.generator import FEATURE_NAMES, generate_applications

    frame = generate_applications(n_rows, np.random.SeedSequence(seed, spawn_key=(stream,)))
    return frame[list(FEATURE_NAMES)]


def add_drift_arguments(parser, applied_to: str) -> None:
    """`--drift KIND --drift-intensity X`: the simulator's drift applied to `applied_to`
    (see `drifted`)."""
    parser.add_argument(
        "--drift",
        default="clean",
        help=f"simulator drift kind applied to {applied_to} (clean, gradual, sudden, "
        "feature_shift, correlation_break)",
    )
    parser.add_argument("--drift-intensity", type=float, default=0.0)


def drifted(frame, kind: str, intensity: float, seed: int):
    """The project simulator's drift transform (`clean` returns the frame as is)."""
    if kind == "clean":
        return frame
    from credit_drift.simulator.drift import apply_drift

    return apply_drift(frame, kind, intensity, np.random.default_rng(seed))


# -- worker side ----------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_repeats(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds (all threads of the process) of each of `repeats` calls, and the
    last call's result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, out


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=float))


# -- parent side ----------------------------------------------------------------------------------
@dataclass
class WorkerRun:
    """Outcome of one worker process."""

    label: str
    ok: bool
    timed_out: bool
    wall_seconds: float  # the whole child process, start to exit (imports and loading included)
    peak_rss_mb: float  # VmHWM seen by the parent (NaN if never read)
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    ended_at: float = float("nan")  # time.time() when the child exited or was killed


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def run_worker(
    script: str | Path,
    args: Sequence[str],
    *,
    label: str,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> WorkerRun:
    """Run `python script --worker ... --result FILE`, wait at most `timeout` seconds (the
    child's whole process group is killed then), and return its JSON result and peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        result_path = Path(tmp.name)
    log_path = result_path.with_suffix(".log")
    cmd = [sys.executable, str(script), *args, "--result", str(result_path)]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        peak = float("nan")
        timed_out = False
        while True:
            hwm = _vm_hwm_mb(proc.pid)
            if hwm is not None:
                peak = hwm if np.isnan(peak) else max(peak, hwm)
            if proc.poll() is not None:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                timed_out = True
                hwm = _vm_hwm_mb(proc.pid)
                if hwm is not None:
                    peak = max(peak, hwm) if not np.isnan(peak) else hwm
                # The child leads its own session: end it and anything it started, nothing else.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(_POLL_SECONDS)
    wall = time.perf_counter() - started
    ended_at = time.time()
    result: dict[str, Any] = {}
    if result_path.exists() and result_path.stat().st_size:
        result = json.loads(result_path.read_text())
    result_path.unlink(missing_ok=True)
    log_text = log_path.read_text() if log_path.exists() else ""
    log_path.unlink(missing_ok=True)
    ok = not timed_out and proc.returncode == 0 and bool(result)
    if "peak_rss_mb" in result:
        # The child's own getrusage figure is exact (the parent samples VmHWM every 0.2 s).
        peak = max(result["peak_rss_mb"], 0 if np.isnan(peak) else peak)
    error = ""
    if not ok:
        error = (
            f"timed out after {timeout:.0f} s"
            if timed_out
            else f"exit code {proc.returncode}: {log_text.strip()[-3000:]}"
        )
    return WorkerRun(label, ok, timed_out, wall, peak, result, error, ended_at)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def fmt_seconds(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def fmt_mb(x: float) -> str:
    return "n/a" if x != x else f"{x:,.0f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
