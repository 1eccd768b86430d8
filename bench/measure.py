"""Wall time and peak RSS of measured work, one child process per job.

A job runs in its own interpreter (`python -m bench.worker JOB ARGS RESULT`), so no job inherits
another's heap, caches or imports, and its peak RSS is its own. Inside a job, phases are timed
separately: Linux resets a process's RSS high-water mark (VmHWM) when "5" is written to
/proc/self/clear_refs, so each phase reports the peak reached during that phase alone.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HWM = re.compile(r"VmHWM:\s+(\d+) kB")


def peak_rss_mb() -> float:
    """This process's RSS high-water mark since start or the last reset."""
    with open("/proc/self/status") as status:
        return int(_HWM.search(status.read()).group(1)) / 1024


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


@dataclass
class Phase:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    calls: int = 0


@dataclass
class Meter:
    """Accumulates wall time and peak RSS per phase label; one label is active at a time."""

    phases: dict[str, Phase] = field(default_factory=dict)
    _active: str | None = None
    _since: float = 0.0

    def begin(self, label: str) -> None:
        """Starts the meter under `label`: what is not inside a phase() is counted there."""
        self._switch(label)

    def end(self) -> None:
        self._switch(None)

    def _switch(self, label: str | None) -> None:
        now = time.perf_counter()
        if self._active is not None:
            phase = self.phases.setdefault(self._active, Phase())
            phase.seconds += now - self._since
            phase.peak_rss_mb = max(phase.peak_rss_mb, peak_rss_mb())
        reset_peak_rss()
        self._active, self._since = label, time.perf_counter()

    @contextlib.contextmanager
    def phase(self, label: str):
        outer = self._active
        self._switch(label)
        try:
            yield
        finally:
            self.phases.setdefault(label, Phase()).calls += 1
            self._switch(outer)

    def instrument(self, module, name: str, label: str) -> None:
        """Times every call of module.name as `label`; the call itself is unchanged."""
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            with self.phase(label):
                return original(*args, **kwargs)

        setattr(module, name, timed)

    def as_dict(self) -> dict:
        return {k: {"seconds": v.seconds, "peak_rss_mb": v.peak_rss_mb, "calls": v.calls} for k, v in self.phases.items()}


class JobFailed(RuntimeError):
    pass


class MemoryCapExceeded(JobFailed):
    """The job's RSS passed the cap and it was stopped (the machine is shared: no OOM killer roulette)."""

    def __init__(self, message: str, rss_mb: float):
        super().__init__(message)
        self.rss_mb = rss_mb


class DiskNearlyFull(JobFailed):
    """The disk the results go to fell below the free-space floor and the job was stopped: a full disk
    breaks every other process on the machine, and L's lakes and warehouse are tens of GB."""


# Jobs are stopped above this RSS, so an oversized stage fails alone instead of making the kernel kill
# whatever is largest on a machine other people use. bench.run sets it from --memory-cap-gb.
MEMORY_CAP_MB = float(os.environ.get("BENCH_MEMORY_CAP_MB", 12 * 1024))
_RSS = re.compile(r"VmRSS:\s+(\d+) kB")


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            match = _RSS.search(status.read())
    except OSError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


# Jobs are stopped when the disk under their output has less free space than this (GB); bench.run
# sets it from --min-free-disk-gb.
MIN_FREE_DISK_GB = 5.0


@dataclass
class Watch:
    """What the launcher saw while a job ran: RSS over the cap, free disk under the floor, and the
    most disk the job took beyond what was used when it started (another writer on the same disk
    would count too; the harness runs one job at a time)."""

    disk: Path
    over_rss_mb: float | None = None
    free_disk_gb: float | None = None
    disk_start: int = field(init=False)
    disk_peak: int = field(init=False)

    def __post_init__(self):
        self.disk_start = self.disk_peak = shutil.disk_usage(self.disk).used

    def check(self, pid: int, cap_mb: float) -> bool:
        """False when the job must be stopped."""
        usage = shutil.disk_usage(self.disk)
        self.disk_peak = max(self.disk_peak, usage.used)
        if usage.free / 2**30 < MIN_FREE_DISK_GB:
            self.free_disk_gb = usage.free / 2**30
            return False
        rss = _rss_mb(pid)
        if rss > cap_mb:
            self.over_rss_mb = rss
            return False
        return True

    @property
    def disk_peak_gb(self) -> float:
        return (self.disk_peak - self.disk_start) / 2**30


def _wait_watched(process: subprocess.Popen, cap_mb: float, watch: Watch) -> None:
    """Waits for the process; kills it when watch.check says so (watch then says why)."""
    while True:
        try:
            process.wait(timeout=0.2)
            return
        except subprocess.TimeoutExpired:
            if not watch.check(process.pid, cap_mb):
                process.kill()
                process.wait()
                return


def run_job(job: str, args: dict, *, env: dict[str, str] | None = None, python: str = sys.executable,
            log: Path | None = None, module: str = "bench.worker") -> dict:
    """Runs a worker job in a fresh interpreter; returns its result plus the parent-side wall time
    (interpreter start and imports included)."""
    result_file = Path(args.get("_result_dir", ROOT / "var" / "bench")) / f".result-{os.getpid()}.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    command = [python, "-m", module, job, json.dumps(args, default=str), str(result_file)]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("a")) if log else subprocess.DEVNULL
        if log:
            shown = re.sub(r"://[^@/]*@", "://***@", json.dumps(args, default=str)[:300])  # no passwords in logs
            out.write(f"\n=== {time.strftime('%H:%M:%S')} {job} {shown}\n")
            out.flush()
        watch = Watch(result_file.parent)
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=out)
        _wait_watched(process, MEMORY_CAP_MB, watch)
    wall = time.perf_counter() - started
    if watch.over_rss_mb is not None:
        raise MemoryCapExceeded(f"bench job {job} passed the {MEMORY_CAP_MB / 1024:.0f} GB RSS cap "
                                f"({watch.over_rss_mb / 1024:.1f} GB after {wall:.0f} s) and was stopped", watch.over_rss_mb)
    if watch.free_disk_gb is not None:
        raise DiskNearlyFull(f"bench job {job} was stopped after {wall:.0f} s: {watch.free_disk_gb:.1f} GB left on the "
                             f"disk of {result_file.parent}, under the {MIN_FREE_DISK_GB:.0f} GB floor "
                             "(--min-free-disk-gb); free space or point --out at a larger disk")
    if process.returncode != 0 or not result_file.exists():
        raise JobFailed(f"bench job {job} failed (exit {process.returncode}); see {log}")
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return result | {"process_seconds": wall, "disk_peak_gb": watch.disk_peak_gb}
