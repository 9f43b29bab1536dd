"""`recsys validate`: exit codes and the exact JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli.main import main

JSON_KEYS = ["file", "kind", "rows_total", "rows_valid", "accepted", "errors", "errors_truncated"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["validate", "--json", *args])
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object, one line
    return code, json.loads(out)


def test_sample_catalog_and_transactions_are_valid(
    capsys: pytest.CaptureFixture[str], sample_dir: Path
) -> None:
    code, report = run_json(capsys, "--kind", "catalog", str(sample_dir / "movies.csv"))
    assert code == 0
    assert list(report) == JSON_KEYS
    assert report["rows_total"] == report["rows_valid"] == 9742
    code, report = run_json(capsys, "--kind", "transactions", str(sample_dir / "ratings.csv"))
    assert (code, report["rows_valid"], report["accepted"]) == (0, 100_836, True)


def test_some_invalid_rows_exit_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"user_id,item_id,timestamp,rating\nu,i,1,NaN\nu,i,1,4\n")
    code, report = run_json(capsys, "--kind", "transactions", str(path))
    assert code == 1
    assert report == {
        "file": str(path),
        "kind": "transactions",
        "rows_total": 2,
        "rows_valid": 1,
        "accepted": True,
        "errors": [{"line": 2, "column": "rating", "reason": "rating is not a finite number: 'NaN'"}],
        "errors_truncated": 0,
    }


def test_unusable_file_exits_two(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    code, report = run_json(capsys, "--kind", "catalog", str(path))
    assert (code, report["accepted"], report["rows_total"]) == (2, False, 0)
    assert report["errors"] == [{"line": 1, "column": None, "reason": "empty file: no header and no rows"}]


def test_readable_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"movieId,title\n1,a\n1,b\n")
    assert main(["validate", "--kind", "catalog", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 invalid" in out
    assert "line 3, column movieId: duplicate item_id '1' (first at line 2)" in out


def test_max_errors_caps_the_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"user_id,item_id,timestamp\n" + b",i,1\n" * 5)
    code, report = run_json(capsys, "--kind", "transactions", "--max-errors", "2", str(path))
    assert (code, len(report["errors"]), report["errors_truncated"], report["accepted"]) == (1, 2, 3, False)  # type: ignore[arg-type]


def test_bad_arguments_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", "--kind", "users", "x.csv"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_is_installed(repo_root: Path, sample_dir: Path) -> None:
    script = Path(sys.executable).parent / "recsys"
    assert script.exists(), "the console script comes from [project.scripts] in pyproject.toml"
    done = subprocess.run(
        [str(script), "validate", "--kind", "catalog", "--json", str(sample_dir / "movies.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_valid"] == 9742
