"""Where local mode keeps its state between runs: `$RECSYS_HOME` (default ~/.recsys).

    ingested.json           content hash → the upload it came from (an upload is ingested once)
    curated/ingest/…        the curated ingest Parquet, mirrored from the embedded AWS (what runs read)
    preprocess/runs/<id>/   each run's preprocessing output (id maps extend the previous run's)
    runs/<id>/run.json      status (running, succeeded, failed, no-op), stage timings, reason, result
    runs/<id>/models/…      the run's model outputs (publish format); report.html and plots/
    models/<version>/       copies of published model folders (the embedded AWS is rebuilt each session)
    live.json               the published version: name, folder, metrics, the version before it
    demo.lock               the process running a demo (one at a time)

Writes go through a temporary file and a rename, so an interrupted run never leaves half a JSON file.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HOME_ENV = "RECSYS_HOME"
RUNNING, SUCCEEDED, FAILED, NOOP = "running", "succeeded", "failed", "no-op"


class DemoBusyError(RuntimeError):
    """Another demo holds RECSYS_HOME."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".recsys").expanduser().resolve()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable id that is also a valid preprocessing run id and model version part."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def curated(self) -> Path:
        return self.root / "curated" / "ingest"

    @property
    def preprocess(self) -> Path:
        return self.root / "preprocess"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ingested.json"

    @property
    def live_path(self) -> Path:
        return self.root / "live.json"

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def model_copy(self, version: str) -> Path:
        return self.root / "models" / version

    # --- the ledger of ingested uploads ------------------------------------------------------------

    def ledger(self) -> dict[str, dict[str, Any]]:
        return dict(read_json(self.ledger_path, {}))

    def record_ingested(self, digest: str, entry: dict[str, Any]) -> None:
        ledger = self.ledger()
        ledger[digest] = entry
        write_json(self.ledger_path, ledger)

    # --- runs ---------------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """Every run record, oldest first."""
        folder = self.root / "runs"
        records = [read_json(p) for p in sorted(folder.glob("*/run.json"))] if folder.is_dir() else []
        return [r for r in records if r]

    def save_run(self, record: dict[str, Any]) -> None:
        write_json(self.run_dir(record["run_id"]) / "run.json", record)

    def trained(self) -> set[str]:
        """Uploads some succeeded run has read (a failed or interrupted run leaves its data owed)."""
        return {d for r in self.runs() if r.get("status") == SUCCEEDED for d in r.get("data", [])}

    def pending(self) -> list[str]:
        """Ingested transactions uploads that no succeeded run has read yet."""
        done = self.trained()
        return sorted(
            d for d, e in self.ledger().items() if e.get("kind") == "transactions" and d not in done
        )

    def mark_interrupted(self) -> list[str]:
        """Runs still marked running (their process is gone: the lock is ours) become failed."""
        marked = []
        for record in self.runs():
            if record.get("status") == RUNNING:
                stage = record.get("stage") or "start"
                record.update(
                    status=FAILED,
                    reason=f"interrupted during {stage} (no finish was recorded)",
                    finished_at=now_iso(),
                )
                self.save_run(record)
                marked.append(record["run_id"])
        return marked

    # --- the live model -----------------------------------------------------------------------------

    def live(self) -> dict[str, Any] | None:
        live = read_json(self.live_path)
        return dict(live) if live else None

    def set_live(self, live: dict[str, Any]) -> None:
        write_json(self.live_path, live)

    # --- one demo at a time -------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "demo.lock"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = path.read_text(encoding="utf-8").strip()
            if holder.isdigit() and _alive(int(holder)) and int(holder) != os.getpid():
                raise DemoBusyError(f"{self.root} is used by another demo (pid {holder})") from None
            path.unlink(missing_ok=True)  # left by a process that is gone
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
