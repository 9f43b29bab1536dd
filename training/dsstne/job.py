"""The DSSTNE GPU job on AWS Batch: S3 inputs → generateNetCDF ×2 → train → predict → S3 outputs.

Settings come from the environment (names in `recsys/contracts.py`); the run reads and writes:

    <input>  = $RECSYS_DSSTNE_INPUT_URI, default s3://$RECSYS_CURATED_BUCKET/dsstne/<run id>/
        config.json              the network (or $RECSYS_DSSTNE_CONFIG_URI, any S3 object); without
                                 either, the built-in tuned network (configs/autoencoder.json, trained
                                 with Adam: see BUILTIN_TRAIN_FLAGS)
        input.txt [output.txt]   DSSTNE text (`sample<TAB>feature[,value]:…`); output.txt: default input.txt
        — or interactions.txt    one text used as both
        — or input/ [output/]    folders of text parts, as the preprocessing job writes them under
                                 curated/runs/<run id>/dsstne/ (point $RECSYS_DSSTNE_INPUT_URI there)
    <output> = $RECSYS_DSSTNE_OUTPUT_URI, default s3://$RECSYS_ARTIFACTS_BUCKET/dsstne/<run id>/
        network.nc features_input features_output samples_input recs.txt metrics.json
        model/                   recs.txt in the publish format (recsys/model_outputs.py), for `publish`
        _SUCCESS                 last

The steps are DSSTNE's MovieLens sample (reference/dsstne.md §2), run through the same argument parsers
and handlers as `recsys dsstne …`: both datasets share one sample index, and the input text is predict's
filter, so users are not recommended what they already have. The dataset names are the config's DataSets.

Nothing partial is published: `_SUCCESS` is uploaded last, and a failed upload deletes what it put, so
consumers wait for `_SUCCESS`. A run whose output already has `_SUCCESS` exits 0 at once (a Batch retry after
the upload succeeded). Exit codes: 0 published, 1 failed (one line says why; nothing is published).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from recsys import contracts
from training.dsstne.export import export_recommendations
from training.dsstne.job_settings import JobError, JobSettings, S3Location, settings_from_env

LOG = logging.getLogger("recsys.dsstne.job")
# The preprocessing run's DSSTNE folders, relative to the run's dsstne/ prefix (contracts.RUN_DSSTNE_*_DIR).
DSSTNE_INPUT_FOLDER = contracts.RUN_DSSTNE_INPUT_DIR.removeprefix("dsstne/")
DSSTNE_OUTPUT_FOLDER = contracts.RUN_DSSTNE_OUTPUT_DIR.removeprefix("dsstne/")
_EPOCH_LINE = re.compile(r"NNNetwork::Train: Epoch (\d+), average error (\S+),")


# ---------------------------------------------------------------------------------------------------------
# S3


def exists(s3: Any, location: S3Location) -> bool:
    """Whether the object exists. A listing, not HeadObject: the job role's s3:ListBucket is limited to
    the run prefixes (an s3:prefix condition), under which HeadObject on a missing key reads 403, not 404."""
    listing = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    return any(item["Key"] == location.key for item in listing.get("Contents", []))


BUILTIN_CONFIG = Path(__file__).resolve().parent / "configs" / "autoencoder.json"
BUILTIN_TRAIN_FLAGS = ("--optimizer", "adam", "-alpha", "0.001", "-lambda", "0.00001")
"""How the built-in network is trained: the `autoencoder` preset's optimizer (training/dsstne/recommender.py),
which is what makes it beat popularity; DSSTNE's own SGD defaults apply to a config the user supplies."""


@dataclass(frozen=True)
class RunInputs:
    """The objects a run reads. A text is one object or the parts of a folder, read in key order;
    `output_text` is `input_text` when one text serves both."""

    config: S3Location | None
    """None: the built-in network (BUILTIN_CONFIG)."""
    input_text: tuple[S3Location, ...]
    output_text: tuple[S3Location, ...]
    encoded_names: bool = False
    """Names are form-URL-encoded ids (the preprocessing job's text parts); decoded when exported."""


def text_parts(s3: Any, folder: S3Location) -> tuple[S3Location, ...]:
    """The data files of a folder written by Spark: every object but `_SUCCESS`, `.crc` and the like
    (names starting with "_" or "."), in key order, so the lines keep the writer's order."""
    parts = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=folder.bucket, Prefix=folder.key):
        for item in page.get("Contents", []):
            name = item["Key"][len(folder.key) :]
            if name and "/" not in name and not name.startswith(("_", ".")) and item.get("Size", 1) > 0:
                parts.append(folder.child(name))
    return tuple(sorted(parts, key=lambda location: location.key))


def find_inputs(s3: Any, settings: JobSettings) -> RunInputs:
    """Locate the run's objects under its input prefix (layout in the module docstring)."""
    config: S3Location | None = settings.config
    if not exists(s3, settings.config):
        if settings.config_explicit:
            raise JobError(f"{settings.config.uri}: network config not found")
        LOG.info("%s not found: training the built-in network %s", settings.config.uri, BUILTIN_CONFIG.name)
        config = None
    source = settings.input
    inputs, outputs, both = (
        source.child(name)
        for name in (
            contracts.DSSTNE_INPUT_FILE,
            contracts.DSSTNE_OUTPUT_FILE,
            contracts.DSSTNE_INTERACTIONS_FILE,
        )
    )
    if exists(s3, inputs):
        return RunInputs(config, (inputs,), (outputs,) if exists(s3, outputs) else (inputs,))
    if exists(s3, both):
        return RunInputs(config, (both,), (both,))
    input_parts = text_parts(s3, source.child(DSSTNE_INPUT_FOLDER))
    if input_parts:
        output_parts = text_parts(s3, source.child(DSSTNE_OUTPUT_FOLDER))
        return RunInputs(config, input_parts, output_parts or input_parts, encoded_names=True)
    raise JobError(
        f"{source.uri}: no inputs: expected {contracts.DSSTNE_INPUT_FILE} (and optionally "
        f"{contracts.DSSTNE_OUTPUT_FILE}), {contracts.DSSTNE_INTERACTIONS_FILE}, or text parts under "
        f"{DSSTNE_INPUT_FOLDER} (and optionally {DSSTNE_OUTPUT_FOLDER})"
    )


@dataclass(frozen=True)
class LocalInputs:
    config: Path
    input_text: Path
    output_text: Path
    encoded_names: bool = False
    builtin_config: bool = False


def download(s3: Any, inputs: RunInputs, workdir: Path) -> LocalInputs:
    """Fetch the config and the texts; a text in parts is concatenated into one file."""
    config = workdir / contracts.DSSTNE_CONFIG_FILE
    if inputs.config is None:
        shutil.copyfile(BUILTIN_CONFIG, config)
    else:
        LOG.info("downloading %s", inputs.config.uri)
        s3.download_file(inputs.config.bucket, inputs.config.key, str(config))
    texts: dict[tuple[S3Location, ...], Path] = {}
    for parts, name in ((inputs.input_text, "input.txt"), (inputs.output_text, "output.txt")):
        if parts in texts:
            continue
        texts[parts] = workdir / name
        if len(parts) == 1:
            LOG.info("downloading %s", parts[0].uri)
            s3.download_file(parts[0].bucket, parts[0].key, str(texts[parts]))
            continue
        piece = workdir / "part.download"  # s3transfer writes at absolute offsets: one file per part
        with open(texts[parts], "wb") as out:
            for part in parts:
                LOG.info("downloading %s", part.uri)
                s3.download_file(part.bucket, part.key, str(piece))
                with open(piece, "rb") as source:
                    shutil.copyfileobj(source, out)
                    source.seek(-1, os.SEEK_END)
                    if source.read(1) != b"\n":  # a part's last line must not run into the next part
                        out.write(b"\n")
        piece.unlink()
    return LocalInputs(
        config,
        texts[inputs.input_text],
        texts[inputs.output_text],
        encoded_names=inputs.encoded_names,
        builtin_config=inputs.config is None,
    )


def publish(s3: Any, files: Mapping[str, Path], metrics: Mapping[str, Any], output: S3Location) -> None:
    """Upload `files` (key name → path) and metrics.json, then `_SUCCESS`; on failure, undo and raise."""
    uploaded: list[str] = []
    try:
        for name, path in files.items():
            LOG.info("uploading %s", output.child(name).uri)
            s3.upload_file(str(path), output.bucket, output.child(name).key)
            uploaded.append(name)
        for name, body in (
            (contracts.DSSTNE_METRICS_FILE, json.dumps(metrics, indent=2).encode()),
            (contracts.DSSTNE_SUCCESS_FILE, b""),
        ):
            s3.put_object(Bucket=output.bucket, Key=output.child(name).key, Body=body)
            uploaded.append(name)
    except BaseException:
        for name in reversed(uploaded):
            with contextlib.suppress(Exception):  # best effort: without _SUCCESS nobody reads them anyway
                s3.delete_object(Bucket=output.bucket, Key=output.child(name).key)
        raise
    LOG.info("published %s", output.uri)


# ---------------------------------------------------------------------------------------------------------
# DSSTNE steps


def dataset_names(config: Path) -> tuple[str, str]:
    """The Input and Output layers' DataSet names; predict needs the input one to end in "_input"."""
    from training.dsstne.config import ConfigError, load_config

    try:
        parsed = load_config(config)
    except ConfigError as exc:
        raise JobError(str(exc)) from None
    names = []
    for kind in ("input", "output"):
        layers = parsed.layers_of_kind(kind)
        if len(layers) != 1 or not layers[0].dataset:
            raise JobError(f"{config.name}: expected one {kind.title()} layer with a DataSet")
        names.append(layers[0].dataset)
    if not names[0].endswith("_input") or names[0] == "_input":
        raise JobError(
            f"{config.name}: the Input layer's DataSet {names[0]!r} must end in '_input' "
            "(predict -d NAME reads NAME_input, as in DSSTNE)"
        )
    return names[0], names[1]


def dsstne(argv: Sequence[str]) -> None:
    """Run `recsys dsstne <argv>` in this process, through the CLI's own parser; failure raises."""
    from training.dsstne import cli

    parser = argparse.ArgumentParser(prog="recsys", exit_on_error=False)
    cli.register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["dsstne", *argv])
    except (argparse.ArgumentError, SystemExit) as exc:  # a bug here, never the user's input
        raise JobError(f"dsstne {' '.join(argv)}: bad arguments: {exc}") from None
    code = args.handler(args)
    if code != 0:
        raise JobError(f"dsstne {argv[0]} failed with exit code {code} (its message is above)")


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def torchrun(argv: Sequence[str], processes: int) -> None:
    """Run `recsys dsstne <argv>` as `processes` ranks under torchrun; its log goes to our stderr."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "recsys.cli.main",
        "dsstne",
        *argv,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise JobError(f"dsstne {argv[0]} on {processes} processes failed with exit code {done.returncode}")


def _flags(command: str, **flags: object) -> list[str]:
    """DSSTNE's one-letter flags: `_flags("train", c="config.json")` → ["train", "-c", "config.json"]."""
    return [command, *(item for flag, value in flags.items() for item in (f"-{flag}", str(value)))]


def final_error(log: str) -> float | None:
    """The last epoch's "average error" from train's DSSTNE-style epoch lines."""
    errors = [float(m.group(2)) for m in _EPOCH_LINE.finditer(log)]
    return errors[-1] if errors else None


class _Tee(io.TextIOBase):
    """Writes to a stream and keeps a copy, so train's epoch lines reach the log and the metrics."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    LOG.info("%s …", step)
    start = time.perf_counter()
    yield
    seconds[step] = round(time.perf_counter() - start, 3)
    LOG.info("%s done in %.1fs", step, seconds[step])


def model_version(run_id: str) -> str:
    """The published model version of a run: "dsstne-<run id>", in the characters versions allow."""
    return "dsstne-" + re.sub(r"[^A-Za-z0-9._:-]", "-", run_id)[:90]


def run_dsstne(
    local: LocalInputs, workdir: Path, settings: JobSettings, seconds: dict[str, float]
) -> tuple[dict[str, Path], dict[str, Any]]:
    """generateNetCDF ×2, train, predict in `workdir`; returns (output name → file, metrics)."""
    input_name, output_name = dataset_names(local.config)
    files = {
        name: workdir / name
        for name in (
            contracts.DSSTNE_NETWORK_FILE,
            contracts.DSSTNE_INPUT_INDEX_FILE,
            contracts.DSSTNE_OUTPUT_INDEX_FILE,
            contracts.DSSTNE_SAMPLE_INDEX_FILE,
            contracts.DSSTNE_RECS_FILE,
        )
    }
    features_in, features_out = (
        files[contracts.DSSTNE_INPUT_INDEX_FILE],
        files[contracts.DSSTNE_OUTPUT_INDEX_FILE],
    )
    samples, network = files[contracts.DSSTNE_SAMPLE_INDEX_FILE], files[contracts.DSSTNE_NETWORK_FILE]
    input_nc, output_nc = workdir / f"{input_name}.nc", workdir / f"{output_name}.nc"
    with _timed(seconds, "generate"):
        for name, text, nc, features in (
            (input_name, local.input_text, input_nc, features_in),
            (output_name, local.output_text, output_nc, features_out),
        ):
            dsstne([*_flags("generate-netcdf", d=name, i=text, o=nc, f=features, s=samples), "-c"])
    tee = _Tee(sys.stderr)
    train = _flags(
        "train", c=local.config, i=input_nc, o=output_nc, n=network, b=settings.batch, e=settings.epochs
    ) + (list(BUILTIN_TRAIN_FLAGS) if local.builtin_config else [])
    if settings.precision != "fp32":
        train += ["--precision", settings.precision]
    with _timed(seconds, "train"), contextlib.redirect_stderr(tee):
        gpus = gpu_count()
        if gpus > 1:  # one process per GPU under torchrun (the multi-GPU job definition)
            torchrun([*train, "--parallel", settings.parallel], gpus)
        else:
            dsstne(train)
    error = final_error(tee.copy.getvalue())
    with _timed(seconds, "predict"):
        # -r and -f are both the input text: score each user's history, and never recommend it back.
        dsstne(
            _flags(
                "predict",
                b=settings.batch,
                d=input_name.removesuffix("_input"),
                i=features_in,
                o=features_out,
                k=settings.top_k,
                n=network,
                f=local.input_text,
                s=files[contracts.DSSTNE_RECS_FILE],
                r=local.input_text,
            )
        )
    with _timed(seconds, "export"):
        model = workdir / contracts.DSSTNE_MODEL_DIR.rstrip("/")
        exported = export_recommendations(
            files[contracts.DSSTNE_RECS_FILE],
            local.input_text,
            model,
            model_version=model_version(settings.run_id),
            run_id=settings.run_id,
            decode_names=local.encoded_names,
        )
    # model.json last among the model's files: a folder without it is incomplete.
    for path in sorted(model.rglob("*"), key=lambda p: (p.name == contracts.MODEL_INFO_FILE, str(p))):
        if path.is_file():
            files[f"{contracts.DSSTNE_MODEL_DIR}{path.relative_to(model).as_posix()}"] = path
    metrics = {
        "run_id": settings.run_id,
        "model_version": model_version(settings.run_id),
        "exported": exported,
        "epochs": settings.epochs,
        "batch": settings.batch,
        "top_k": settings.top_k,
        "final_error": error if error is not None and math.isfinite(error) else None,
        "datasets": {"input": input_name, "output": output_name},
        "network": BUILTIN_CONFIG.name if local.builtin_config else "supplied config.json",
    }
    return files, metrics


def run(settings: JobSettings, s3: Any, workdir: Path) -> dict[str, Any] | None:
    """The whole job; returns the published metrics, or None when the run was already published."""
    done = settings.output.child(contracts.DSSTNE_SUCCESS_FILE)
    if exists(s3, done):
        LOG.info("%s exists: run %s is already published, nothing to do", done.uri, settings.run_id)
        return None
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with _timed(seconds, "download"):
        local = download(s3, find_inputs(s3, settings), workdir)
    files, metrics = run_dsstne(local, workdir, settings, seconds)
    seconds["total"] = round(time.perf_counter() - start, 3)
    metrics["seconds"] = seconds
    publish(s3, files, metrics, settings.output)
    return metrics


# ---------------------------------------------------------------------------------------------------------
# Entry point


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise JobError(f"stopped by signal {signum} (job cancelled, timed out or its host reclaimed)")


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, s3: Any = None) -> int:
    """Run one job; `env` and `s3` (a boto3 S3 client) are injectable for tests."""
    parser = argparse.ArgumentParser(prog="dsstne-job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, help="keep the working files here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    LOG.setLevel(logging.INFO)
    handle = threading.current_thread() is threading.main_thread()  # signal() works there only
    previous = signal.signal(signal.SIGTERM, _terminated) if handle else None  # undo uploads, then exit
    try:
        settings = settings_from_env(os.environ if env is None else env)
        LOG.info("run %s: %s → %s", settings.run_id, settings.input.uri, settings.output.uri)
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        with _work_dir(args.work_dir) as workdir:
            metrics = run(settings, s3, workdir)
    except JobError as exc:
        LOG.error("failed: %s; nothing published", exc)
        return 1
    except Exception as exc:  # S3 errors, bugs: still one clear line, the traceback for the curious
        LOG.exception("failed: %s: %s; nothing published", type(exc).__name__, exc)
        return 1
    finally:
        if handle:
            signal.signal(signal.SIGTERM, previous)
    if metrics is not None:
        LOG.info(
            "run %s: final error %s, %ss in all",
            settings.run_id,
            metrics["final_error"],
            metrics["seconds"]["total"],
        )
    return 0


@contextlib.contextmanager
def _work_dir(path: Path | None) -> Iterator[Path]:
    if path is None:
        with tempfile.TemporaryDirectory(prefix="dsstne-") as tmp:
            yield Path(tmp)
        return
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise JobError(f"--work-dir {path}: not empty (train refuses to overwrite a network)")
    yield path


if __name__ == "__main__":
    sys.exit(main())
