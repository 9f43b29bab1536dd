"""One call, two backends: `train_fm(settings, backend="local" | "sagemaker")`.

Both read the FM channels and manifest.json of a preprocessing run and produce the same artifact
(training/fm/artifact.py) and a `TrainResult` with SageMaker's metric names. Each backend is imported only
when used: the local one needs torch and numba (the `train` extra), the SageMaker one boto3 (`aws`).
"""

from __future__ import annotations

from training.fm.settings import FmTrainSettings, TrainResult

BACKENDS = ("local", "sagemaker")


def train_fm(settings: FmTrainSettings, backend: str = "local", *, wait: bool = True) -> TrainResult:
    """Train an FM on `settings.run` into `settings.output`.

    `wait` (SageMaker only): follow the job to its end and import its model; without it, return as soon
    as the job is created (the result names the job and where its model.tar.gz will be).
    """
    if backend == "local":
        from training.fm.local import train_local

        return train_local(settings)
    if backend == "sagemaker":
        from training.fm.sagemaker import train_sagemaker

        return train_sagemaker(settings, wait=wait)
    raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
