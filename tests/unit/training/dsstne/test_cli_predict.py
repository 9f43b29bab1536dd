"""`recsys dsstne predict`: DSSTNE's recommendations file, the filter, k, and the MovieLens walkthrough."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
import torch

from recsys.cli.main import main
from training.dsstne.config import parse_config
from training.dsstne.network import build_spec, initial_weights, save_network
from training.dsstne.network_file import Activation, LayerKind, LayerRecord, NetworkDescription, WeightRecord
from training.dsstne.network_file import write_network as write_raw_network

CONFIG = Path(__file__).parent / "data" / "movielens-config.json"
ITEMS = [f"m{i}" for i in range(6)]
PROBABILITIES = [0.35, 0.9, 0.125, 0.6, 0.75, 0.5]  # sigmoid outputs of m0..m5 whatever the input


def predict(tmp_path: Path, *flags: str, **paths: Path | str) -> int:
    """predict with the files of `tmp_path` unless overridden (keys: n, i, o, f, r, s, d)."""
    files: dict[str, Path | str] = {
        "d": "gl",
        "i": tmp_path / "features_input",
        "o": tmp_path / "features_output",
        "n": tmp_path / "gl.nc",
        "f": tmp_path / "filter",
        "s": tmp_path / "recs",
        "r": tmp_path / "input",
    }
    files.update(paths)
    argv = ["dsstne", "predict", "--device", "cpu"]
    for flag, value in files.items():
        argv += [f"-{flag}", str(value)]
    return main([*argv, *flags])


@pytest.fixture
def fixed_scores(tmp_path: Path) -> Path:
    """A network whose output ignores the input: σ(bias) = PROBABILITIES, padding units scored highest."""
    config = parse_config(
        {
            "Layers": [
                {"Name": "Input", "Kind": "Input", "N": "auto", "DataSet": "gl_input", "Sparse": True},
                {"Name": "Hidden", "Kind": "Hidden", "N": 4},
                {"Name": "Output", "Kind": "Output", "N": "auto", "DataSet": "gl_output"},
            ],
            "ErrorFunction": "ScaledMarginalCrossEntropy",
        }
    )
    spec, _, _ = build_spec(config, {"gl_input": 128, "gl_output": 128})
    weights = initial_weights(config, spec)
    for w in weights.w:
        w.zero_()
    weights.b[-1].fill_(20.0)  # the 128-padding: must never be printed
    weights.b[-1][: len(ITEMS)] = torch.logit(torch.tensor(PROBABILITIES, dtype=torch.float64)).float()
    save_network(tmp_path / "gl.nc", config, spec, weights)
    for name in ("features_input", "features_output"):
        (tmp_path / name).write_text("".join(f"{item}\t{i}\n" for i, item in enumerate(ITEMS)))
    return tmp_path


def test_exact_lines_with_the_filter_applied(fixed_scores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("u1\tm0,5:m1\nu2\tm2:unknown\nu3\tm5\nu1\tm3\n")  # u1 again: keeps place 1
    (tmp / "filter").write_text(
        "u1\tm1,1700000000:m4\n"  # values (timestamps) do not matter: listed items go
        "u2\tm1\n"
        "u2\tm0:m9\n"  # a later line for a sample replaces the earlier one; m9 is no item
        "nobody\tm3\n"
    )
    assert predict(tmp, "-k", "3") == 0, capsys.readouterr().err
    assert (tmp / "recs").read_text() == (
        "u1\tm3,0.600:m5,0.500:m0,0.350:\nu2\tm1,0.900:m4,0.750:m3,0.600:\nu3\tm1,0.900:m4,0.750:m3,0.600:\n"
    )
    assert "3 samples" in capsys.readouterr().out


def test_precision_flag_and_rows_running_out_of_items(fixed_scores: Path) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("u1\tm0\n")
    (tmp / "filter").write_text("u1\tm0:m1:m2:m3\n")
    assert predict(tmp, "-k", "6", "-p", "6.4f") == 0
    assert (tmp / "recs").read_text() == "u1\tm4,0.7500:m5,0.5000:\n"  # fewer than k: the rest were seen


def test_batching_does_not_change_the_file(fixed_scores: Path) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("".join(f"u{i}\tm{i % 6}\n" for i in range(7)))
    (tmp / "filter").write_text("".join(f"u{i}\tm{(i * 5) % 6}\n" for i in range(7)))
    assert predict(tmp, "-k", "4", "-b", "1024") == 0
    whole = (tmp / "recs").read_text()
    assert predict(tmp, "-k", "4", "-b", "2", s=tmp / "recs2") == 0
    assert (tmp / "recs2").read_text() == whole
    assert len(whole.splitlines()) == 7


def test_k_larger_than_the_catalog(fixed_scores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("u1\tm0\n")
    (tmp / "filter").write_text("")
    assert predict(tmp, "-k", "7") == 1
    err = capsys.readouterr().err
    assert "-k 7 is larger than the catalog" in err
    assert "has 6 items" in err
    assert not (tmp / "recs").exists()


@pytest.mark.parametrize("flag", ["n", "i", "o", "f", "r"])
def test_missing_files_are_named(fixed_scores: Path, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("u1\tm0\n")
    (tmp / "filter").write_text("")
    missing = tmp / f"absent-{flag}"
    assert predict(tmp, "-k", "2", **{flag: missing}) == 1
    err = capsys.readouterr().err
    assert f"{missing}: no such file" in err
    assert f"(-{flag})" in err


def test_dataset_name_must_match_the_network(fixed_scores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = fixed_scores
    (tmp / "input").write_text("u1\tm0\n")
    (tmp / "filter").write_text("")
    assert predict(tmp, "-k", "2", d="movies") == 1
    err = capsys.readouterr().err
    assert "movies_input is not the input DataSet" in err
    assert "(use -d gl)" in err


def test_unsupported_network_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layers = [
        LayerRecord("Input", LayerKind.INPUT, nx=128, data_set="gl_input", attributes=1),
        LayerRecord("Hidden", LayerKind.HIDDEN, nx=4, sources=["Input"]),
        LayerRecord(
            "Output",
            LayerKind.OUTPUT,
            nx=128,
            data_set="gl_output",
            sources=["Hidden"],
            activation=Activation.SOFTMAX,
        ),
    ]
    weights = [
        WeightRecord("Input", "Hidden", bias=torch.zeros(4).numpy(), weights=torch.zeros(128, 4).numpy()),
        WeightRecord("Hidden", "Output", bias=torch.zeros(128).numpy(), weights=torch.zeros(4, 128).numpy()),
    ]
    write_raw_network(tmp_path / "gl.nc", NetworkDescription(name="AE", layers=layers), weights)
    for name in ("features_input", "features_output", "filter"):
        (tmp_path / name).write_text("m0\t0\n" if name.startswith("features") else "")
    (tmp_path / "input").write_text("u1\tm0\n")
    assert predict(tmp_path, "-k", "1") == 1
    assert "not supported by this engine yet: Softmax activation" in capsys.readouterr().err


def test_movielens_walkthrough_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DSSTNE's samples/movielens steps 3–6 on a tiny ratings file, with its own config.json."""
    rng = random.Random(7)
    seen: dict[str, set[str]] = {}
    lines = []
    for number in rng.sample(range(1, 500), 30):  # not sorted: rows must follow the file's order
        movies = [str(m) for m in rng.sample(range(1, 51), rng.randint(2, 9))]
        seen[str(number)] = set(movies)
        lines.append(f"{number}\t" + ":".join(f"{m},{1_200_000_000 + rng.randrange(10**7)}" for m in movies))
    ratings = tmp_path / "ratings"
    ratings.write_text("\n".join(lines) + "\n")
    t = str(tmp_path)
    for name, features in (("gl_input", "features_input"), ("gl_output", "features_output")):
        argv = ["dsstne", "generate-netcdf", "-d", name, "-i", str(ratings), "-o", f"{t}/{name}.nc"]
        assert main([*argv, "-f", f"{t}/{features}", "-s", f"{t}/samples_input", "-c"]) == 0
    argv = ["dsstne", "train", "-c", str(CONFIG), "-i", f"{t}/gl_input.nc", "-o", f"{t}/gl_output.nc"]
    assert main([*argv, "-n", f"{t}/gl.nc", "-b", "8", "-e", "2", "--device", "cpu"]) == 0
    k = 5
    assert predict(tmp_path, "-b", "8", "-k", str(k), f=ratings, r=ratings) == 0, capsys.readouterr().err

    recs = (tmp_path / "recs").read_text().splitlines()
    assert [line.split("\t")[0] for line in recs] == list(seen)
    entry = re.compile(r"(\d+),(\d\.\d{3}):")
    for line in recs:
        user, body = line.split("\t")
        assert re.fullmatch(f"(?:{entry.pattern}){{{k}}}", body), line
        pairs = entry.findall(body)
        scores = [float(score) for _, score in pairs]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
        items = [item for item, _ in pairs]
        assert len(set(items)) == k
        assert not set(items) & seen[user], f"user {user} was recommended movies already rated"
