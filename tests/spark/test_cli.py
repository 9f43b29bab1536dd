"""`recsys preprocess` on the bundled MovieLens sample, and its refusals (exit 2, one line, no output)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from glue import cli
from glue.dsstne_text import decode_name
from recsys import contracts
from recsys.recordio import read_sparse_records
from training.dsstne.generate import parse_line


def _preprocess(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="recsys")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["preprocess", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.handler(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sample_run(spark, sample_dir, tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sample")
    code, stdout, stderr = _preprocess(
        "--catalog", str(sample_dir / "movies.csv"),
        "--transactions", str(sample_dir / "ratings.csv"),
        "--out", str(out),
        "--run-id", "sample",
    )  # fmt: skip
    assert code == 0, stderr
    run = out / "runs" / "sample"
    return {
        "out": out,
        "run": run,
        "stdout": stdout,
        "stderr": stderr,
        "manifest": json.loads((run / "manifest.json").read_text()),
    }


def test_the_sample_runs_end_to_end(sample_run) -> None:
    manifest = sample_run["manifest"]
    counts = manifest["counts"]
    assert (counts["users"], counts["items"], counts["interactions"]) == (610, 9742, 100836)
    assert counts["categories"] == 19  # MovieLens genres; "(no genres listed)" is no genre
    assert counts["unknown_items_with_interactions"] == 0
    assert counts["test_users"] == 610
    assert abs(counts["test"] / counts["interactions"] - 0.2) < 0.005
    assert manifest["feature_dim"] == 610 + 9742 + 19
    assert "610 users" in sample_run["stdout"]
    progress = [line.split()[2:4] for line in sample_run["stderr"].splitlines() if " preprocess " in line]
    assert [stage for stage, _ in progress] == ["clean", "index", "split", "features", "fm"]  # one per stage
    assert "100,836 interactions" in sample_run["stderr"]


def test_the_sample_fm_test_channel_reads_back(sample_run) -> None:
    manifest = sample_run["manifest"]
    files = sorted((sample_run["run"] / contracts.RUN_FM_TEST_DIR).glob("*.pbr"))
    assert [f.name for f in files] == manifest["fm"]["channels"]["test"]["files"]
    assert all(f.stat().st_size <= 100 * 2**20 for f in files)
    parts = []
    for path in files:  # one set of shards per Spark partition
        with path.open("rb") as stream:
            parts.append(read_sparse_records(stream))
    assert {dim for _, _, dim in parts} == {manifest["feature_dim"]}
    rows = sp.vstack([part for part, _, _ in parts]).tocsr()
    labels = np.concatenate([part_labels for _, part_labels, _ in parts])
    users = rows.indices[rows.indptr[:-1]]
    items = rows.indices[rows.indptr[:-1] + 1]
    assert users.max() < 610
    assert items.min() >= 610
    assert items.max() < 610 + 9742
    assert np.all(np.diff(rows.indptr) >= 2)
    # 4 negatives per positive, plus the explicit (rated < 4) negatives of the split
    positives = manifest["fm"]["channels"]["test"]["positives"]
    assert int(labels.sum()) == positives
    assert len(labels) <= manifest["counts"]["test"] + 4 * positives


def test_the_sample_dsstne_text_has_one_line_per_user(sample_run) -> None:
    lines = [
        line
        for path in sorted((sample_run["run"] / contracts.RUN_DSSTNE_INPUT_DIR).glob("part-*"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == 610
    parsed = [parse_line(line) for line in lines]
    assert {decode_name(p[0]) for p in parsed if p} == {str(u) for u in range(1, 611)}
    assert sum(len(p[1]) for p in parsed if p) == sample_run["manifest"]["counts"]["train"]


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_inputs_must_be_given_one_way(tmp_path) -> None:
    assert _preprocess("--out", str(tmp_path))[0] == 2
    ratings = _csv(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n")
    code, _, err = _preprocess("--transactions", ratings, "--ingest", str(tmp_path), "--out", str(tmp_path))
    assert code == 2
    assert "either" in err
    code, _, err = _preprocess("--transactions", str(tmp_path / "nope.csv"), "--out", str(tmp_path))
    assert code == 2
    assert "no such file" in err


def test_bad_inputs_fail_with_one_line_and_write_nothing(spark, tmp_path) -> None:
    out = tmp_path / "out"
    bad_header = _csv(tmp_path / "bad.csv", "user,movie,when\n1,2,3\n")
    code, _, err = _preprocess("--transactions", bad_header, "--out", str(out))
    assert code == 2
    assert "missing required column" in err
    empty = _csv(tmp_path / "empty.csv", "\ufeffuserId,movieId,rating,timestamp\r\n")
    code, _, err = _preprocess("--transactions", empty, "--out", str(out), "--run-id", "e")
    assert code == 2
    assert "empty" in err
    assert not out.exists()
    code, _, err = _preprocess("--transactions", empty, "--out", str(out), "--run-id", "../x")
    assert code == 2
    assert "run id" in err


def test_an_existing_run_is_refused(sample_run, sample_dir) -> None:
    code, _, err = _preprocess(
        "--transactions",
        str(sample_dir / "ratings.csv"),
        "--out",
        str(sample_run["out"]),
        "--run-id",
        "sample",
    )
    assert code == 2
    assert "already complete" in err
