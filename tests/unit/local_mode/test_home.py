"""RECSYS_HOME bookkeeping: owed data, interrupted runs, the live pointer, one demo at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_mode.home import FAILED, RUNNING, SUCCEEDED, DemoBusyError, Home


def test_pending_is_what_no_succeeded_run_has_read(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.record_ingested("c1", {"kind": "catalog"})
    home.record_ingested("t1", {"kind": "transactions"})
    home.record_ingested("t2", {"kind": "transactions"})
    assert home.pending() == ["t1", "t2"]  # catalogs alone do not ask for a run
    home.save_run({"run_id": "r1", "status": FAILED, "data": ["t1", "t2"]})
    assert home.pending() == ["t1", "t2"]  # a failed run leaves its data owed
    home.save_run({"run_id": "r2", "status": SUCCEEDED, "data": ["t1"]})
    assert home.pending() == ["t2"]


def test_runs_left_running_are_marked_interrupted(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.save_run({"run_id": "r1", "status": RUNNING, "stage": "fm"})
    home.save_run({"run_id": "r2", "status": SUCCEEDED})
    assert home.mark_interrupted() == ["r1"]
    record = home.runs()[0]
    assert record["status"] == FAILED
    assert record["reason"].startswith("interrupted during fm")
    assert home.runs()[1]["status"] == SUCCEEDED


def test_live_pointer_round_trip(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert home.live() is None
    home.set_live({"version": "v1", "folder": "x"})
    assert home.live() == {"version": "v1", "folder": "x"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_one_demo_at_a_time(tmp_path: Path) -> None:
    home = Home(tmp_path)
    (tmp_path / "demo.lock").write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(DemoBusyError, match="another demo"), home.lock():
        pass
    (tmp_path / "demo.lock").write_text("999999999")  # a process that is gone: the lock is taken over
    with home.lock():
        assert (tmp_path / "demo.lock").read_text() == str(os.getpid())
    assert not (tmp_path / "demo.lock").exists()
