"""The local backend: SageMaker's FM reproduced in PyTorch (training/fm/model.py) on this machine.

`train_local(settings)` reads the run's FM channels (fm/train/, fm/test/ as manifest.json lists them),
trains for `epochs` passes over shuffled mini-batches of `mini_batch_size` rows, computes SageMaker's test
metrics after every epoch, and writes into the output folder:

    model.npz      the artifact (training/fm/artifact.py), with the run's feature layout
    metrics.json   {"metrics": final test metrics, "history": one entry per epoch, timings, settings}

`fit` is the training loop on rows already in memory (the evaluation plugin uses it directly).
Reproducible: the seed fixes the initial parameters and every epoch's order; on the CPU the result does
not depend on the number of threads. Runs on the CPU, or on CUDA (`device="auto"` picks CUDA when present).
A run or output on S3 is staged through a temporary folder (needs boto3, the `aws` extra).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from recsys import contracts
from training.fm.artifact import FeatureLayout, FmModel, load_layout
from training.fm.data import read_channel, read_manifest
from training.fm.hyperparameters import FmHyperparameters
from training.fm.metrics import OBJECTIVE, metrics_of
from training.fm.model import FmOptimizer, FmParameters, FmRows, init_parameters, scores
from training.fm.settings import FmTrainSettings, TrainResult

SCORE_BATCH = 1 << 16


class LocalTrainingError(ValueError):
    """Settings or input the local trainer cannot use; the message says which."""


@dataclass
class FitResult:
    """Trained parameters (padding row included) and one metrics entry per epoch."""

    params: FmParameters
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def final_metrics(self) -> dict[str, float]:
        last = self.history[-1] if self.history else {}
        return {name: value for name, value in last.items() if name.startswith("test:")}


def resolve_device(name: str) -> torch.device:
    """ "auto": CUDA when present, else the CPU; "cuda" without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise LocalTrainingError(f"device: expected auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LocalTrainingError("device cuda: this machine has no CUDA device (use --device cpu or auto)")
    return torch.device(name)


def predict_scores(params: FmParameters, rows: FmRows, batch: int = SCORE_BATCH) -> np.ndarray:
    """Raw scores ŷ of every row, in batches (float32 numpy)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            idx = rows.idx[start : start + batch].long()
            x = None if rows.x is None else rows.x[start : start + batch]
            out.append(scores(params, idx, x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def fit(
    hp: FmHyperparameters,
    train: FmRows,
    test: FmRows | None = None,
    *,
    seed: int = 42,
    device: torch.device | str = "cpu",
    progress: bool = True,
    description: str = "fm",
) -> FitResult:
    """Train from scratch on in-memory rows; test metrics after every epoch when `test` is given."""
    device = resolve_device(device) if isinstance(device, str) else device
    if len(train) == 0:
        raise LocalTrainingError("no training rows")
    params = init_parameters(hp, torch.Generator().manual_seed(seed))
    params = FmParameters(params.w0.to(device), params.w.to(device), params.V.to(device))
    optimizer = FmOptimizer(params, hp)
    train_rows = train.to(device)
    test_rows = test.to(device) if test is not None and len(test) else None
    order_rng = np.random.default_rng(seed)
    n, batch = len(train_rows), hp.mini_batch_size
    result = FitResult(params)
    bar = tqdm(
        total=hp.epochs * n,
        unit=" rows",
        unit_scale=True,
        desc=description,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        for epoch in range(1, hp.epochs + 1):
            started = time.perf_counter()
            order = torch.from_numpy(order_rng.permutation(n)).to(device)
            for start in range(0, n, batch):
                optimizer.step(train_rows, order[start : start + batch])
                bar.update(min(batch, n - start))
            loss = optimizer.take_loss() / n
            seconds = time.perf_counter() - started
            entry = {
                "epoch": float(epoch),
                "train_loss": loss,
                "seconds": seconds,
                "rows_per_second": n / seconds,
            }
            if test_rows is not None:
                yhat = predict_scores(params, test_rows)
                entry.update(metrics_of(yhat, test_rows.y.cpu().numpy(), hp.predictor_type))
            result.history.append(entry)
            objective = OBJECTIVE[hp.predictor_type]
            shown = {"loss": f"{loss:.4f}"}
            if objective in entry:
                shown[objective.split(":", 1)[1]] = f"{entry[objective]:.4f}"
            bar.set_postfix(shown, refresh=False)
            if progress:
                bar.write(
                    f"{description}: epoch {epoch}/{hp.epochs}: train loss {loss:.4f}"
                    + "".join(
                        f", {name} {value:.4f}" for name, value in entry.items() if name.startswith("test:")
                    )
                    + f" ({n / seconds:,.0f} rows/s)",
                    file=sys.stderr,
                )
    return result


def to_model(params: FmParameters, hp: FmHyperparameters, layout: FeatureLayout | None) -> FmModel:
    """The artifact: parameters without the padding row, hyperparameters as SageMaker's strings."""
    d = params.feature_dim
    return FmModel(
        float(params.w0.cpu()[0]),
        params.w[:d].detach().cpu().numpy().copy(),
        params.V[:d].detach().cpu().numpy().copy(),
        hp.predictor_type,
        hp.to_sagemaker(),
        layout,
    )


def train_local(settings: FmTrainSettings) -> TrainResult:
    """Train on a preprocessing run's channels; write model.npz and metrics.json into `settings.output`."""
    hp = settings.hyperparameters
    device = resolve_device(settings.device)
    started = time.perf_counter()
    with _local_run(settings.run) as run, _local_output(settings.output) as out:
        manifest = read_manifest(run)
        if manifest["feature_dim"] != hp.feature_dim:
            raise LocalTrainingError(
                f"feature_dim={hp.feature_dim} differs from the run's manifest ({manifest['feature_dim']})"
            )
        train = read_channel(run, manifest, "train")
        if train is None:
            raise LocalTrainingError(f"{run}: the manifest lists no train channel files")
        test = read_channel(run, manifest, "test")
        read_seconds = time.perf_counter() - started
        result = fit(hp, train, test, seed=settings.seed, device=device, progress=settings.progress)
        model = to_model(result.params, hp, load_layout(run))
        model_path = out.path / contracts.FM_MODEL_FILE
        model.save(model_path)
        report = {
            "backend": "local",
            "run": settings.run,
            "device": str(device),
            "seed": settings.seed,
            "hyperparameters": hp.to_sagemaker(),
            "train_rows": len(train),
            "test_rows": len(test) if test is not None else 0,
            "read_seconds": read_seconds,
            "train_seconds": sum(entry["seconds"] for entry in result.history),
            "metrics": result.final_metrics,
            "history": result.history,
        }
        (out.path / contracts.FM_METRICS_FILE).write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    return TrainResult(
        backend="local", model_path=out.uri(contracts.FM_MODEL_FILE), metrics=result.final_metrics
    )


# --- runs and outputs on S3 ------------------------------------------------------------------------


@contextmanager
def _local_run(run: str) -> Iterator[Path]:
    """The run as a local folder: itself, or its manifest, maps and FM channels copied from S3."""
    if not run.startswith("s3://"):
        path = Path(run)
        if not path.is_dir():
            raise LocalTrainingError(f"--run {run}: not a folder")
        yield path
        return
    import boto3

    from training.fm.sagemaker import download_run_layout, folder_uri, split_s3_uri

    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="recsys-fm-run-") as tmp:
        target = download_run_layout(s3, run, Path(tmp))
        bucket, prefix = split_s3_uri(folder_uri(run), what="run")
        manifest = read_manifest(target)
        for channel, entry in manifest["fm"].get("channels", {}).items():
            folder = entry.get("path", f"fm/{channel}/")
            (target / folder).mkdir(parents=True, exist_ok=True)
            for name in entry.get("files", []):
                s3.download_file(bucket, prefix + folder + name, str(target / folder / name))
        yield target


@dataclass
class _Output:
    path: Path
    remote: str | None = None

    def uri(self, name: str) -> str:
        return f"{self.remote}{name}" if self.remote else str(self.path / name)


@contextmanager
def _local_output(output: str) -> Iterator[_Output]:
    """A local folder to write into; an s3:// output gets its files uploaded when the block succeeds."""
    if not output.startswith("s3://"):
        path = Path(output)
        path.mkdir(parents=True, exist_ok=True)
        yield _Output(path)
        return
    import boto3

    from training.fm.sagemaker import folder_uri, split_s3_uri

    remote = folder_uri(output)
    bucket, prefix = split_s3_uri(remote, what="output")
    tmp = Path(tempfile.mkdtemp(prefix="recsys-fm-out-"))
    try:
        yield _Output(tmp, remote)
        s3 = boto3.client("s3")
        for item in sorted(tmp.iterdir()):
            s3.upload_file(str(item), bucket, prefix + item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe(result: TrainResult) -> dict[str, Any]:
    """A JSON-ready summary of a result (for the CLI)."""
    return {
        "backend": result.backend,
        "model": result.model_path,
        "metrics": result.metrics,
        "job": result.job_name,
    }
