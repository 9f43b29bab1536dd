"""`recsys evaluate`: exit codes, clean JSON on stdout, the table, and errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.cli.main import main

KEYS = {
    "model",
    "split",
    "k",
    "test_ratio",
    "seed",
    "n_users",
    "n_items",
    "n_train",
    "n_test",
    "n_test_users",
    "precision@5",
    "recall@5",
    "ndcg@5",
    "map@5",
    "map",
    "coverage",
    "rmse",
    "fit_seconds",
    "recommend_seconds",
}


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 users x 12 distinct items each, Zipf-like popularity over 60 items, canonical CSV."""
    rng = np.random.default_rng(2)
    weights = 1.0 / np.arange(1, 61)
    weights /= weights.sum()
    lines = ["user_id,item_id,timestamp,rating"]
    for user in range(40):
        for n, item in enumerate(rng.choice(60, 12, replace=False, p=weights)):
            lines.append(f"user{user},item{item},{1_600_000_000 + 1000 * user + n},{rng.integers(1, 6)}")
    path = tmp_path_factory.mktemp("eval") / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_model_prints_one_flat_json_object(capsys: pytest.CaptureFixture[str], ratings: Path) -> None:
    code, out, _ = run(capsys, "--ratings", str(ratings), "--model", "popularity", "--k", "5", "--json")
    assert code == 0
    assert out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == KEYS
    assert result["model"] == "popularity"
    assert result["k"] == 5
    assert result["n_users"] == 40
    assert result["n_train"] + result["n_test"] == 480
    assert isinstance(result["rmse"], float)


def test_several_models_print_one_object_with_a_list(
    capsys: pytest.CaptureFixture[str], ratings: Path
) -> None:
    args = ["--ratings", str(ratings), "--model", "popularity", "--model", "random", "--k", "5"]
    code, out, _ = run(capsys, *args, "--split", "temporal", "--json")
    assert code == 0
    payload = json.loads(out)
    assert list(payload) == ["models"]
    assert [m["model"] for m in payload["models"]] == ["popularity", "random"]
    assert all(set(m) == KEYS and m["split"] == "temporal" for m in payload["models"])
    assert payload["models"][1]["rmse"] is None


def test_table_names_the_data_and_one_row_per_model(
    capsys: pytest.CaptureFixture[str], ratings: Path
) -> None:
    code, out, err = run(capsys, "--ratings", str(ratings), "--model", "popularity", "--model", "random")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"data: {ratings}:")
    assert "40 users" in lines[0]
    assert "480 interactions" in lines[0]
    assert "stratified split 75/25" in lines[0]
    assert lines[1].split()[:3] == ["model", "P@10", "R@10"]
    assert [line.split()[0] for line in lines[2:]] == ["popularity", "random"]
    assert lines[3].split()[7] == "-"  # random has no RMSE
    assert "evaluating random" in err  # progress goes to stderr, not stdout


def test_missing_file_exits_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ratings.csv"
    code, out, err = run(capsys, "--ratings", str(missing), "--model", "popularity", "--json")
    assert code == 2
    assert out == ""
    assert "no-such-ratings.csv" in err
    assert "Traceback" not in err


def test_malformed_file_exits_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    code, _, err = run(capsys, "--ratings", str(bad), "--model", "popularity")
    assert code == 2
    assert "bad.csv" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "bpr"], "unknown model 'bpr'"),
        (["--model", "popularity", "--k", "0"], "k must be"),
        (["--model", "popularity", "--test-ratio", "1.5"], "test ratio"),
        (["--model", "popularity", "--test-ratio", "0"], "test ratio"),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], ratings: Path, args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--ratings", str(ratings), *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_too_little_data_exits_2_naming_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    single = tmp_path / "single.csv"
    single.write_text("user_id,item_id,timestamp\na,x,1\nb,y,2\n")
    code, _, err = run(capsys, "--ratings", str(single), "--model", "popularity")
    assert code == 2
    assert "single.csv" in err
    assert "enough interactions" in err


def test_bundled_sample_popularity_beats_random(capsys: pytest.CaptureFixture[str], sample_dir: Path) -> None:
    args = ["--ratings", str(sample_dir / "ratings.csv"), "--items", str(sample_dir / "movies.csv")]
    code, out, _ = run(capsys, *args, "--model", "popularity", "--model", "random", "--json")
    assert code == 0
    pop, rnd = json.loads(out)["models"]
    assert (pop["n_users"], pop["n_items"], pop["n_train"] + pop["n_test"]) == (610, 9742, 100_836)
    assert pop["precision@10"] > 10 * rnd["precision@10"]
