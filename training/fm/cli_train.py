"""`recsys fm train`: train an FM on a preprocessing run, here (local) or as a SageMaker training job.

    recsys fm train --run RUN --out OUT [--backend local|sagemaker] [--hp NAME=VALUE ...]
                    [--epochs N] [--num-factors K] [--mini-batch-size B] [--predictor-type T]
                    [--seed S] [--device auto|cpu|cuda] [--no-progress]
                    [--role-arn ARN] [--instance-type ml.c5.xlarge] [--instance-count N] [--spot]
                    [--region R] [--wait | --no-wait] ...

RUN is the preprocessing run (a folder or s3://…/runs/<id>/: manifest.json, fm/train/, fm/test/, maps).
Hyperparameters have SageMaker's names, defaults and meanings (`--hp factors_lr=0.001`; the shortcut
flags set the common ones); feature_dim comes from the run's manifest and predictor_type defaults to the
manifest's. The service default is one epoch: set --epochs.

local: trains on this machine (CUDA when present) and writes OUT/model.npz and OUT/metrics.json (OUT may
be s3://…: the files are uploaded). sagemaker: sends a CreateTrainingJob for SageMaker's built-in image
(needs --role-arn); with --wait (the default) follows it, imports its model into the artifact and prints
its final metrics. stdout gets one JSON line: backend, model, metrics, job; progress goes to stderr.

Exit codes: 0 trained (or the job created, with --no-wait); 1 the run, the data or the job failed
(the message says which); 2 bad arguments (the message names the flag).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2
SHORTCUTS = {  # flag dest -> hyperparameter name
    "epochs": "epochs",
    "num_factors": "num_factors",
    "mini_batch_size": "mini_batch_size",
    "predictor_type": "predictor_type",
}
SAGEMAKER_FLAGS = {  # flag dest -> SageMakerJobSettings field
    "role_arn": "role_arn",
    "instance_type": "instance_type",
    "instance_count": "instance_count",
    "volume_size_gb": "volume_size_gb",
    "max_runtime_s": "max_runtime_s",
    "spot": "spot",
    "max_wait_s": "max_wait_s",
    "checkpoint_uri": "checkpoint_uri",
    "region": "region",
    "job_name": "job_name",
    "kms_key_id": "kms_key_id",
}


class UsageError(ValueError):
    """A bad flag value; the message starts with the flag."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an FM on a preprocessing run, locally or as a SageMaker training job",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, metavar="RUN", help="preprocessing run folder or s3:// URI")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder or s3:// prefix")
    parser.add_argument("--backend", choices=("local", "sagemaker"), default="local", help="default: local")
    parser.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a SageMaker FM hyperparameter, e.g. factors_lr=0.001 (repeat for several)",
    )
    parser.add_argument("--epochs", help="passes over the train channel (SageMaker's default: 1)")
    parser.add_argument("--num-factors", dest="num_factors", help="factor dimension (default 64)")
    parser.add_argument("--mini-batch-size", dest="mini_batch_size", help="rows per step (default 1000)")
    parser.add_argument(
        "--predictor-type",
        dest="predictor_type",
        help="binary_classifier or regressor (default: the manifest's)",
    )
    local = parser.add_argument_group("local backend")
    local.add_argument("--seed", default="42", help="initial parameters and batch order (default 42)")
    local.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    local.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    job = parser.add_argument_group("sagemaker backend")
    job.add_argument("--role-arn", dest="role_arn", help="execution role of the training job (required)")
    job.add_argument("--instance-type", dest="instance_type", help="e.g. ml.c5.xlarge (the default)")
    job.add_argument("--instance-count", dest="instance_count", help="more than 1 shards the channels")
    job.add_argument("--volume-size-gb", dest="volume_size_gb", help="training volume (default 30)")
    job.add_argument("--max-runtime-s", dest="max_runtime_s", help="stopping condition (default 3600)")
    job.add_argument("--spot", action="store_true", default=None, help="managed spot training")
    job.add_argument("--max-wait-s", dest="max_wait_s", help="with --spot: capacity wait + run time")
    job.add_argument("--checkpoint-uri", dest="checkpoint_uri", help="s3:// checkpoints (spot resumes)")
    job.add_argument("--region", help="AWS region (default: the session's)")
    job.add_argument("--job-name", dest="job_name", help="default: recsys-fm-<run id>-<UTC time>")
    job.add_argument("--kms-key-id", dest="kms_key_id", help="encrypts the output and the volume")
    job.add_argument(
        "--wait", dest="wait", action="store_true", default=True, help="follow the job (default)"
    )
    job.add_argument("--no-wait", dest="wait", action="store_false", help="return once the job is created")
    parser.set_defaults(handler=run)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _int(text: str, flag: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag}: expected a whole number, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"{flag}: expected a whole number >= {minimum}, got {text!r}")
    return value


def _manifest(run: str) -> dict[str, Any]:
    """The run's manifest, from a folder or from S3."""
    if run.startswith("s3://"):
        import boto3

        from training.fm.sagemaker import SageMakerSettingsError, read_manifest

        try:
            return read_manifest(boto3.client("s3"), run)
        except SageMakerSettingsError as exc:
            raise UsageError(f"--run: {exc}") from exc
    from training.fm.data import ChannelError
    from training.fm.data import read_manifest as read_local

    if not Path(run).is_dir():
        raise UsageError(f"--run: {run} is not a folder")
    try:
        return read_local(Path(run))
    except ChannelError as exc:
        raise UsageError(f"--run: {exc}") from exc


def hyperparameters(args: argparse.Namespace, manifest: dict[str, Any]) -> Any:
    """FmHyperparameters from the manifest, --hp and the shortcut flags; errors name the flag."""
    from training.fm.hyperparameters import FmHyperparameters, HyperparameterError

    values: dict[str, str] = {}
    source: dict[str, str] = {}
    for item in args.hp:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--hp: expected NAME=VALUE, got {item!r}")
        values[name], source[name] = value.strip(), f"--hp {name}"
    for dest, name in SHORTCUTS.items():
        given = getattr(args, dest)
        if given is not None:
            values[name], source[name] = given, _flag(dest)
    feature_dim = manifest.get("feature_dim")
    if "feature_dim" in values and values["feature_dim"] != str(feature_dim):
        raise UsageError(f"--hp feature_dim: {values['feature_dim']} differs from the run's {feature_dim}")
    values["feature_dim"] = str(feature_dim)
    values.setdefault(
        "predictor_type", str(manifest.get("fm", {}).get("predictor_type", "binary_classifier"))
    )
    try:
        return FmHyperparameters.from_mapping(values, source="--hp")
    except HyperparameterError as exc:
        # Messages start with the hyperparameter's name ("epochs: …", "--hp: epochs='x' is not …").
        message = str(exc).removeprefix("--hp: ")
        name = message.split(":", 1)[0].split("=", 1)[0].strip()
        raise UsageError(f"{source.get(name, '--hp')}: {message}") from exc


def job_settings(args: argparse.Namespace) -> Any:
    """SageMakerJobSettings from the flags (None for the local backend, which refuses SageMaker flags)."""
    from training.fm.settings import SageMakerJobSettings

    given = {dest: getattr(args, dest) for dest in SAGEMAKER_FLAGS if getattr(args, dest) is not None}
    if args.backend != "sagemaker":
        if given:
            raise UsageError(f"{_flag(next(iter(given)))}: only with --backend sagemaker")
        return None
    if "role_arn" not in given:
        raise UsageError("--role-arn: required with --backend sagemaker")
    fields: dict[str, Any] = {}
    for dest, value in given.items():
        if dest in ("instance_count", "volume_size_gb", "max_runtime_s", "max_wait_s"):
            fields[SAGEMAKER_FLAGS[dest]] = _int(value, _flag(dest), 1)
        else:
            fields[SAGEMAKER_FLAGS[dest]] = value
    return SageMakerJobSettings(**fields)


def run(args: argparse.Namespace) -> int:
    from training.fm.settings import FmTrainSettings

    try:
        seed = _int(args.seed, "--seed", 0)
        if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
            raise UsageError(f"--device: expected auto, cpu or cuda, got {args.device!r}")
        job = job_settings(args)
        hp = hyperparameters(args, _manifest(args.run))
        settings = FmTrainSettings(
            run=args.run,
            output=args.out,
            hyperparameters=hp,
            seed=seed,
            device=args.device,
            progress=args.progress,
            sagemaker=job,
        )
    except UsageError as exc:
        print(f"recsys fm train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = _train(settings, args.backend, args.wait)
    except UsageError as exc:
        print(f"recsys fm train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"recsys fm train: {exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = {"backend": result.backend, "model": result.model_path, "metrics": result.metrics}
    if result.job_name:
        summary["job"] = result.job_name
    print(json.dumps(summary))
    return 0


def _train(settings: Any, backend: str, wait: bool) -> Any:
    from training.fm.api import train_fm

    if backend == "local" and settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device: {settings.device} asked for, but this machine has no CUDA device")
    return train_fm(settings, backend, wait=wait)
