"""The disk holding the landing zone turns read-only, or fills up in the middle of a write.

Tests run as root, and root ignores permission bits, so the disk is real: a tmpfs mounted over
$CRM_HOME/landing inside a private mount namespace (`unshare --mount`), remounted read-only or filled,
that only the processes this test starts in the namespace (`nsenter`) see. The run must fail loudly,
naming the path; leave nothing half-written in the landing zone; change nothing in the warehouse;
and, once the disk is writable again, the rerun must give exactly the tables of a clean run.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import SAMPLE_END
from tests.faults.conftest import PROJECT_ROOT, drive, source_records, warehouse_rows, warehouse_state

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]


class LandingDisk:
    """A tmpfs over `path`, seen only inside a mount namespace kept alive by a sleeping process."""

    def __init__(self, path, size_kib: int):
        self.path = path
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "infinity"])
        self.prefix = ("nsenter", "-t", str(self.holder.pid), "-m", f"--wd={PROJECT_ROOT}", "--")
        self.run("mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path))

    def run(self, *command: str) -> str:
        return subprocess.run([*self.prefix, *command], check=True, capture_output=True, text=True).stdout

    def remount(self, mode: str) -> None:
        self.run("mount", "-o", f"remount,{mode}", str(self.path))

    def files(self) -> list[str]:
        """Every file on the disk, as the namespace sees it."""
        out = self.run("find", str(self.path), "-type", "f")
        return sorted(os.path.relpath(p, self.path) for p in out.split())

    def free_kib(self) -> int:
        return int(self.run("df", "--output=avail", "-k", str(self.path)).split()[-1])

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def landing_disk():
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("needs root and util-linux unshare/nsenter to mount a disk in a private mount namespace")
    disks = []

    def mount(path, size_kib: int = 2048) -> LandingDisk:
        path.mkdir(parents=True, exist_ok=True)
        disks.append(LandingDisk(path, size_kib))
        return disks[-1]

    yield mount
    for disk in disks:
        disk.close()


def test_read_only_landing_disk_fails_loudly_then_the_rerun_is_clean(landing_disk, at_mid, references, tally):
    warehouse = at_mid("duckdb")
    landing = warehouse.home / "landing"
    disk = landing_disk(landing)
    disk.remount("ro")
    code, lines, stderr = drive(warehouse, SAMPLE_END, prefix=disk.prefix)
    assert code == 1, stderr[-3000:]
    error = lines[-1]["error"]
    assert "Read-only file system" in error and str(landing / "customers") in error, error
    assert disk.files() == []
    assert warehouse_state(warehouse.url) == references("duckdb").mid_state
    disk.remount("rw")
    code, lines, stderr = drive(warehouse, SAMPLE_END, prefix=disk.prefix)
    assert code == 0, stderr[-3000:]
    assert disk.files() == [f"{kind}/run_date={SAMPLE_END}/part.parquet"
                            for kind in ("complaints", "customers", "orders", "surveys")]
    assert warehouse_state(warehouse.url) == references("duckdb").end_state
    tally("read-only landing disk", warehouse, source_records(warehouse.sample, SAMPLE_END), warehouse_rows(warehouse.url))


def test_landing_disk_full_mid_write_leaves_no_partial_file(landing_disk, at_mid, references, tally):
    warehouse = at_mid("duckdb")
    landing = warehouse.home / "landing"
    disk = landing_disk(landing, size_kib=1024)
    # Leave a few KiB: the first landing file (customers, ~20 KiB) runs out of space half-way.
    disk.run("dd", "if=/dev/zero", f"of={landing / 'filler'}", "bs=1k", f"count={disk.free_kib() - 8}")
    code, lines, stderr = drive(warehouse, SAMPLE_END, prefix=disk.prefix)
    assert code == 1, stderr[-3000:]
    error = lines[-1]["error"]
    assert "No space left on device" in error and str(landing / "customers") in error, error
    assert disk.files() == ["filler"]  # no half-written file, under its own name or a temporary one
    assert warehouse_state(warehouse.url) == references("duckdb").mid_state
    disk.run("rm", str(landing / "filler"))
    code, lines, stderr = drive(warehouse, SAMPLE_END, prefix=disk.prefix)
    assert code == 0, stderr[-3000:]
    assert warehouse_state(warehouse.url) == references("duckdb").end_state
    tally("landing disk full", warehouse, source_records(warehouse.sample, SAMPLE_END), warehouse_rows(warehouse.url))
