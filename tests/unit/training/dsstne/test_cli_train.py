"""`recsys dsstne train`: DSSTNE's flags, files, log line and refusals (reference/dsstne.md §6)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import h5netcdf  # type: ignore[import-untyped]
import numpy as np
import pytest
import torch

from recsys.cli.main import build_parser, main
from training.dsstne import engine as engine_module
from training.dsstne.network import load_network

CONFIG = Path(__file__).parent / "data" / "movielens-config.json"
LOG_LINE = re.compile(
    r"NNNetwork::Train: Epoch (\d+), average error \d+\.\d{6}, average training error \d+\.\d{6}, "
    r"average regularization error \d+\.\d{6}, elapsed time \d+\.\d{6}s, \d+ examples/s"
)


def write_ratings(path: Path, users: int = 24, items: int = 40, seed: int = 0) -> None:
    """convert_ratings.awk's output shape: `user<TAB>movie,timestamp:…`, one line per user."""
    rng = random.Random(seed)
    lines = []
    for user in range(1, users + 1):
        movies = rng.sample(range(1, items + 1), rng.randint(2, 8))
        lines.append(f"{user}\t" + ":".join(f"{m},{1_100_000_000 + rng.randrange(10**7)}" for m in movies))
    path.write_text("\n".join(lines) + "\n")


def generate(tmp_path: Path, ratings: Path, name: str, features: str) -> Path:
    out = tmp_path / f"{name}.nc"
    argv = ["dsstne", "generate-netcdf", "-d", name, "-i", str(ratings), "-o", str(out)]
    assert main([*argv, "-f", str(tmp_path / features), "-s", str(tmp_path / "samples_input"), "-c"]) == 0
    return out


@pytest.fixture
def datasets(tmp_path: Path) -> tuple[Path, Path]:
    """Steps 3 and 4 of DSSTNE's MovieLens sample on a tiny ratings file."""
    ratings = tmp_path / "ratings"
    write_ratings(ratings)
    return (
        generate(tmp_path, ratings, "gl_input", "features_input"),
        generate(tmp_path, ratings, "gl_output", "features_output"),
    )


def train(inputs: Path, outputs: Path, network: Path, *flags: str, config: Path = CONFIG) -> int:
    argv = ["dsstne", "train", "-c", str(config), "-i", str(inputs), "-o", str(outputs), "-n", str(network)]
    return main([*argv, "-b", "8", *flags])


def test_trains_saves_every_epoch_and_checkpoints(
    tmp_path: Path, datasets: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    network = tmp_path / "gl.nc"
    assert train(*datasets, network, "-e", "2", "--checkpoint-every", "1", "--device", "cpu") == 0
    err = capsys.readouterr().err
    epochs = [int(m.group(1)) for m in LOG_LINE.finditer(err)]
    assert epochs == [1, 2], err
    assert sorted(p.name for p in tmp_path.glob("gl.nc*")) == ["gl.nc", "gl.nc1.nc", "gl.nc2.nc"]
    spec, weights, input_name, output_name = load_network(network)
    assert (input_name, output_name) == ("gl_input", "gl_output")
    assert [spec.input_width, *(layer.width for layer in spec.layers)] == [128, 128, 128]
    _, last, _, _ = load_network(tmp_path / "gl.nc2.nc")
    _, first, _, _ = load_network(tmp_path / "gl.nc1.nc")
    assert all(torch.equal(a, b) for a, b in zip(weights.w, last.w, strict=True))
    assert not torch.equal(weights.w[1], first.w[1])


@pytest.fixture
def engine_settings(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The TrainSettings of every Engine the CLI builds (the real engine still trains)."""
    seen: list[Any] = []
    real = engine_module.Engine

    def spy(spec: Any, weights: Any, settings: Any, device: Any, **kwargs: Any) -> Any:
        seen.append(settings)
        return real(spec, weights, settings, device, **kwargs)

    monkeypatch.setattr(engine_module, "Engine", spy)
    return seen


def test_config_and_flags_reach_the_engine(
    tmp_path: Path, datasets: tuple[Path, Path], engine_settings: list[Any]
) -> None:
    seen = engine_settings
    flags = ["-e", "1", "-alpha", "0.01", "-lambda", "0.001", "-lambda1", "0.0001", "--optimizer", "adam"]
    assert train(*datasets, tmp_path / "gl.nc", *flags) == 0
    (settings,) = seen
    assert (settings.alpha, settings.l2, settings.l1, settings.batch) == (0.01, 0.001, 0.0001, 8)
    assert (settings.optimizer, settings.mu, settings.mu1) == ("adam", 0.9, 0.999)
    assert (settings.shuffle, settings.decay) == (False, 0.0)  # the config's ShuffleIndices false
    assert train(*datasets, tmp_path / "sgd.nc", "-e", "1", "-mu", "0.7") == 0
    assert (seen[1].optimizer, seen[1].mu) == ("sgd", 0.7)


def test_refuses_an_existing_network_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = tmp_path / "gl.nc"
    network.write_text("keep me")
    # The datasets do not even exist: the -n check comes first, as in DSSTNE.
    assert train(tmp_path / "no_in.nc", tmp_path / "no_out.nc", network) == 1
    assert network.read_text() == "keep me"
    assert f"{network}: network file already exists" in capsys.readouterr().err


def test_unknown_dataset_name_lists_the_loaded_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = tmp_path / "ratings"
    write_ratings(ratings)
    inputs = generate(tmp_path, ratings, "gl_input", "features_input")
    outputs = generate(tmp_path, ratings, "movies", "features_output")
    assert train(inputs, outputs, tmp_path / "gl.nc") == 1
    err = capsys.readouterr().err
    assert "DataSet 'gl_output' of layer 'Output' matches no dataset (available: gl_input, movies)" in err
    assert str(CONFIG) in err
    assert not (tmp_path / "gl.nc").exists()


def test_mismatched_example_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ratings, fewer = tmp_path / "ratings", tmp_path / "fewer"
    write_ratings(ratings)
    fewer.write_text("".join(ratings.read_text().splitlines(keepends=True)[:10]))
    inputs = generate(tmp_path, ratings, "gl_input", "features_input")
    outputs = generate(tmp_path, fewer, "gl_output", "features_output")
    assert train(inputs, outputs, tmp_path / "gl.nc") == 1
    err = capsys.readouterr().err
    assert "has 24 examples but output dataset 'gl_output'" in err
    assert "has 10" in err


@pytest.mark.parametrize("missing", ["config", "input", "output"])
def test_missing_files_are_named(
    tmp_path: Path, datasets: tuple[Path, Path], missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {"config": CONFIG, "input": datasets[0], "output": datasets[1]}
    paths[missing] = tmp_path / f"absent-{missing}"
    code = train(paths["input"], paths["output"], tmp_path / "gl.nc", config=paths["config"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"absent-{missing}" in err


def test_not_a_dataset_file(
    tmp_path: Path, datasets: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    assert train(junk, datasets[1], tmp_path / "gl.nc") == 1
    assert f"{junk}: not a readable DSSTNE dataset file" in capsys.readouterr().err


def test_unsupported_config_is_named(
    tmp_path: Path, datasets: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        CONFIG.read_text().replace('"Activation" : "Sigmoid", "Sparse" : true }', '"pDropout" : 0.5 }', 1)
    )
    assert train(*datasets, tmp_path / "gl.nc", config=config) == 1
    err = capsys.readouterr().err
    assert "not supported by this engine yet: pDropout on Hidden layers" in err


def test_divergence_exits_nonzero_and_writes_no_network(
    tmp_path: Path, datasets: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    network = tmp_path / "gl.nc"
    assert train(*datasets, network, "-e", "2", "-alpha", "1e30") == 3
    err = capsys.readouterr().err
    assert "diverged" in err
    assert f"{network} was not written" in err
    assert list(tmp_path.glob("gl.nc*")) == []


@pytest.mark.parametrize("parallel", ["data", "model"])
def test_torchrun_with_two_processes_trains_like_one(
    tmp_path: Path, datasets: tuple[Path, Path], parallel: str
) -> None:
    # GIVEN the same data WHEN trained by one process and by two under torchrun (gloo on CPU)
    import json
    import subprocess
    import sys

    config = CONFIG
    if parallel == "data":  # each rank draws its own denoising masks: compare without denoising
        settings = json.loads(CONFIG.read_text())
        del settings["Denoising"]
        config = tmp_path / "config.json"
        config.write_text(json.dumps(settings))
    single, double = tmp_path / "one.nc", tmp_path / "two.nc"
    assert train(*datasets, single, "-e", "2", "--device", "cpu", "--parallel", parallel, config=config) == 0
    argv = ["dsstne", "train", "-c", str(config), "-i", str(datasets[0]), "-o", str(datasets[1])]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "recsys.cli.main",
            *argv,
            "-n",
            str(double),
            "-b",
            "8",
            "-e",
            "2",
            "--device",
            "cpu",
            "--parallel",
            parallel,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # THEN the first process wrote one network, and it is the one-process network
    assert sorted(p.name for p in tmp_path.glob("two.nc*")) == ["two.nc"]
    _, alone, _, _ = load_network(single)
    _, together, _, _ = load_network(double)
    for a, b in zip(alone.w + alone.b, together.w + together.b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_cli_precision_flag_defaults_to_fp32_and_refuses_unknown_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dsstne", "train", "-c", "c.json", "-i", "i.nc", "-o", "o.nc", "-n", str(tmp_path / "n.nc")]
    assert build_parser().parse_args(argv).precision == "fp32"  # DSSTNE's arithmetic unless asked
    assert build_parser().parse_args([*argv, "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--precision", "fp16"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_a_bf16_trained_network_is_an_fp32_file_and_predicts(
    tmp_path: Path,
    datasets: tuple[Path, Path],
    engine_settings: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a network trained through the CLI with --precision bf16 (which reaches the engine)
    network = tmp_path / "gl.nc"
    assert train(*datasets, network, "-e", "2", "--device", "cpu", "--precision", "bf16") == 0
    assert [s.precision for s in engine_settings] == ["bf16"]
    # THEN the file stores float32 weights and biases in DSSTNE's layout, and it loads as fp32
    with h5netcdf.File(network, "r") as nc:
        stored = {name: nc.variables[name].dtype for name in nc.variables if name.startswith("weight")}
    assert stored
    assert set(stored.values()) == {np.dtype(np.float32)}, stored
    _, weights, _, _ = load_network(network)
    assert {t.dtype for t in weights.w + weights.b} == {torch.float32}
    # AND DSSTNE's predict runs on it (the ratings file of the fixture as input and filter)
    argv = ["dsstne", "predict", "--device", "cpu", "-b", "8", "-k", "3", "-d", "gl", "-n", str(network)]
    argv += ["-i", str(tmp_path / "features_input"), "-o", str(tmp_path / "features_output")]
    argv += ["-f", str(tmp_path / "ratings"), "-r", str(tmp_path / "ratings"), "-s", str(tmp_path / "recs")]
    assert main(argv) == 0, capsys.readouterr().err
    recs = (tmp_path / "recs").read_text().splitlines()
    assert len(recs) == 24  # one line per user of the fixture's ratings
    assert all(len(line.split("\t")[1].rstrip(":").split(":")) == 3 for line in recs)
