"""SageMaker FM `model.tar.gz` → `FmModel`, without mxnet (../shared/reference/sagemaker-fm.md §5).

    model.tar.gz ─ model_algo-1 ─┬─ a ZIP: meta.json ({"training_parameters": {...}}), symbol.json, params
                                 └─ or a bare NDArray list (no meta.json)
    params (NDArray list, mxnet_params) with `arg:`/`aux:` prefixes, in one of two naming schemes:
        A: w0_weight (1,), w1_weight (feature_dim, 1), v (feature_dim, num_factors)
        B: Linear_Plus_Bias_bias (1,), Linear_Plus_Bias_weight (1, feature_dim), v (num_factors, feature_dim)

Matrices are oriented by their shapes against meta.json's feature_dim and num_factors, not by the scheme's
name (both orientations occur); when the two are equal the orientation cannot be told, and that is an
error rather than a guess. Parameters must be float32. Other members of the tarball (model_algo-2 of a
multi-host job, state files) are ignored: every host holds the same model.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys import contracts
from training.fm.artifact import ArtifactError, FeatureLayout, FmModel, load_layout
from training.fm.hyperparameters import PREDICTOR_TYPES
from training.fm.mxnet_params import NDArrayFormatError, NDArrayList, read_ndarray_list

MODEL_MEMBER = "model_algo-1"
META_FILE = "meta.json"
SYMBOL_FILE = "symbol.json"
PARAMS_FILE = "params"
SCHEMES: dict[str, dict[str, str]] = {
    # role → parameter name (after stripping arg:/aux:)
    "A": {"bias": "w0_weight", "linear": "w1_weight", "factors": "v"},
    "B": {"bias": "Linear_Plus_Bias_bias", "linear": "Linear_Plus_Bias_weight", "factors": "v"},
}
MAX_MEMBER_BYTES = 8 << 30
"""A model_algo-1 larger than this is refused before it is read (a corrupt size field)."""


class SageMakerModelError(ArtifactError):
    """A SageMaker model that cannot be imported; the message names the file (and member) and the reason."""


@dataclass(frozen=True)
class SageMakerModelFiles:
    """What model_algo-1 holds: the parameters, and meta.json when it is a ZIP."""

    params: NDArrayList
    meta: dict[str, Any] | None
    where: str
    """`<tar>!model_algo-1[!params]`, for messages."""


def read_model_tar(path: str | Path) -> SageMakerModelFiles:
    """Open the tarball and read model_algo-1 (a ZIP, or a bare NDArray list)."""
    tar_path = str(path)
    try:
        with tarfile.open(tar_path, mode="r:*") as archive:
            members = {m.name.removeprefix("./"): m for m in archive.getmembers()}
            member = members.get(MODEL_MEMBER)
            if member is None:
                found = ", ".join(sorted(members)) or "nothing"
                raise SageMakerModelError(f"{tar_path}: no {MODEL_MEMBER} in the archive (found: {found})")
            if not member.isfile():
                raise SageMakerModelError(f"{tar_path}!{MODEL_MEMBER}: not a regular file")
            if member.size > MAX_MEMBER_BYTES:
                raise SageMakerModelError(f"{tar_path}!{MODEL_MEMBER}: {member.size} bytes is too large")
            handle = archive.extractfile(member)
            assert handle is not None  # a regular file always has a handle
            data = handle.read()
    except FileNotFoundError as exc:
        raise SageMakerModelError(f"{tar_path}: no such file") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SageMakerModelError(f"{tar_path}: not a readable tar.gz archive ({exc})") from exc
    return read_model_algo(data, where=f"{tar_path}!{MODEL_MEMBER}")


def read_model_algo(data: bytes, *, where: str) -> SageMakerModelFiles:
    """model_algo-1's bytes: a ZIP of meta.json + symbol.json + params, or a bare NDArray list."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return SageMakerModelFiles(_params(data, where), None, where)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            missing = [name for name in (META_FILE, PARAMS_FILE) if name not in names]
            if missing:
                raise SageMakerModelError(
                    f"{where}: the ZIP has no {' or '.join(missing)} (found: {', '.join(sorted(names))})"
                )
            meta_bytes = archive.read(META_FILE)
            params_bytes = archive.read(PARAMS_FILE)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise SageMakerModelError(f"{where}: a damaged ZIP ({exc})") from exc
    try:
        meta = json.loads(meta_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SageMakerModelError(f"{where}!{META_FILE}: not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise SageMakerModelError(f"{where}!{META_FILE}: expected a JSON object")
    return SageMakerModelFiles(_params(params_bytes, f"{where}!{PARAMS_FILE}"), meta, where)


def _params(data: bytes, where: str) -> NDArrayList:
    try:
        return read_ndarray_list(data, source=where)
    except NDArrayFormatError as exc:
        raise SageMakerModelError(str(exc)) from exc


def fm_model_from_files(files: SageMakerModelFiles, *, predictor_type: str | None = None) -> FmModel:
    """Map the parameters (scheme A or B, either orientation) to an FmModel, checked against meta.json."""
    where = files.where
    training = _training_parameters(files)
    if files.params.names is None:
        raise SageMakerModelError(
            f"{where}: the parameters have no names (a list save), so they cannot be told apart; an FM "
            "model saves w0/w1/v or Linear_Plus_Bias_*/v by name"
        )
    params: dict[str, np.ndarray | None] = {}
    for name, array in zip(files.params.names, files.params.arrays, strict=True):
        params[name.removeprefix("arg:").removeprefix("aux:")] = array
    scheme = _scheme(params, where, training)
    roles = SCHEMES[scheme]
    arrays: dict[str, np.ndarray] = {}
    for role, name in roles.items():
        array = params[name]
        if array is None:
            raise SageMakerModelError(f"{where}: parameter {name!r} was saved empty (no shape)")
        if array.dtype != np.float32:
            raise SageMakerModelError(f"{where}: parameter {name!r} is {array.dtype}, expected float32")
        arrays[role] = array
    feature_dim, num_factors = _dimensions(training, arrays, roles, where)
    w0 = _bias(arrays["bias"], roles["bias"], where)
    w = _linear(arrays["linear"], feature_dim, roles["linear"], where)
    factors = _factors(arrays["factors"], feature_dim, num_factors, where)
    kind = predictor_type or (training or {}).get("predictor_type")
    if kind is None:
        raise SageMakerModelError(
            f"{where}: no meta.json to take predictor_type from; pass it (--predictor-type)"
        )
    if kind not in PREDICTOR_TYPES:
        raise SageMakerModelError(f"{where}: predictor_type {kind!r} is not one of {PREDICTOR_TYPES}")
    hyperparameters = {str(k): str(v) for k, v in (training or {}).items()}
    return FmModel(w0, w, factors, str(kind), hyperparameters)


def _training_parameters(files: SageMakerModelFiles) -> dict[str, Any] | None:
    if files.meta is None:
        return None
    training = files.meta.get("training_parameters")
    if not isinstance(training, dict):
        raise SageMakerModelError(f"{files.where}!{META_FILE}: no 'training_parameters' object")
    return training


def _scheme(params: dict[str, np.ndarray | None], where: str, training: dict[str, Any] | None) -> str:
    matching = [s for s, roles in SCHEMES.items() if all(name in params for name in roles.values())]
    if len(matching) == 1:
        return matching[0]
    found = ", ".join(sorted(params)) or "none"
    expected = " or ".join("{" + ", ".join(roles.values()) + "}" for roles in SCHEMES.values())
    what = "both naming schemes" if matching else "no FM naming scheme"
    source = "meta.json's FM model" if training is not None else "an FM model"
    raise SageMakerModelError(
        f"{where}: parameter names match {what} of {source} (found: {found}; expected {expected})"
    )


def _int_parameter(training: dict[str, Any], name: str, where: str) -> int:
    try:
        value = float(training[name])
        if not value.is_integer() or value <= 0:
            raise ValueError(value)
        return int(value)
    except KeyError as exc:
        raise SageMakerModelError(f"{where}!{META_FILE}: training_parameters has no {name}") from exc
    except (TypeError, ValueError) as exc:
        raise SageMakerModelError(
            f"{where}!{META_FILE}: training_parameters.{name}={training[name]!r} is not a whole number > 0"
        ) from exc


def _dimensions(
    training: dict[str, Any] | None, arrays: dict[str, np.ndarray], roles: dict[str, str], where: str
) -> tuple[int, int]:
    """feature_dim and num_factors: from meta.json, or (a bare list) from the linear weights' length."""
    if training is not None:
        return _int_parameter(training, "feature_dim", where), _int_parameter(training, "num_factors", where)
    linear = arrays["linear"]
    if linear.ndim == 2 and 1 in linear.shape:
        feature_dim = max(linear.shape) if linear.size > 1 else 1
    elif linear.ndim == 1:
        feature_dim = linear.shape[0]
    else:
        raise SageMakerModelError(f"{where}: {roles['linear']} has shape {linear.shape}, not a vector")
    factors = arrays["factors"]
    if factors.ndim != 2 or feature_dim not in factors.shape:
        raise SageMakerModelError(
            f"{where}: v has shape {factors.shape}, which does not fit feature_dim {feature_dim}"
        )
    other = factors.shape[1] if factors.shape[0] == feature_dim else factors.shape[0]
    return feature_dim, other


def _bias(array: np.ndarray, name: str, where: str) -> float:
    if array.size != 1:
        raise SageMakerModelError(f"{where}: {name} has shape {array.shape}, expected one value")
    return float(array.reshape(()))


def _linear(array: np.ndarray, feature_dim: int, name: str, where: str) -> np.ndarray:
    if array.shape not in ((feature_dim,), (feature_dim, 1), (1, feature_dim)):
        raise SageMakerModelError(
            f"{where}: {name} has shape {array.shape}, expected ({feature_dim}, 1) or (1, {feature_dim}) "
            f"for feature_dim {feature_dim}"
        )
    return np.ascontiguousarray(array.reshape(feature_dim), dtype=np.float32)


def _factors(array: np.ndarray, feature_dim: int, num_factors: int, where: str) -> np.ndarray:
    if array.ndim != 2 or sorted(array.shape) != sorted((feature_dim, num_factors)):
        raise SageMakerModelError(
            f"{where}: v has shape {array.shape}, expected ({feature_dim}, {num_factors}) or "
            f"({num_factors}, {feature_dim}) for feature_dim {feature_dim}, num_factors {num_factors}"
        )
    if feature_dim == num_factors:
        raise SageMakerModelError(
            f"{where}: v is {array.shape}: with feature_dim == num_factors == {feature_dim} its orientation "
            "(features × factors or factors × features) cannot be told from its shape"
        )
    oriented = array if array.shape == (feature_dim, num_factors) else array.T
    return np.ascontiguousarray(oriented, dtype=np.float32)


def import_sagemaker_model(
    tar_path: str | Path, *, manifest: str | Path | None = None, predictor_type: str | None = None
) -> FmModel:
    """`model.tar.gz` → FmModel; with `manifest` (a preprocessing run's manifest.json), its layout too."""
    model = fm_model_from_files(read_model_tar(tar_path), predictor_type=predictor_type)
    if manifest is None:
        return model
    return model.with_layout(_layout_for(model, Path(manifest), str(tar_path)))


def _layout_for(model: FmModel, manifest: Path, tar_path: str) -> FeatureLayout:
    """The run's layout, after checking that the run's feature_dim is the model's.

    `manifest` is the run's manifest.json (or the run folder); the id maps are read from its folder."""
    if manifest.is_dir():
        manifest = manifest / contracts.RUN_MANIFEST_FILE
    if manifest.name != contracts.RUN_MANIFEST_FILE:
        raise SageMakerModelError(
            f"{manifest}: expected a run's {contracts.RUN_MANIFEST_FILE} (its folder holds the id maps)"
        )
    try:
        declared = json.loads(manifest.read_text(encoding="utf-8")).get("feature_dim")
    except (OSError, ValueError, AttributeError) as exc:
        raise SageMakerModelError(f"{manifest}: not a preprocessing manifest ({exc})") from exc
    layout = load_layout(manifest.parent)
    feature_dim = declared if isinstance(declared, int) else layout.feature_dim
    if feature_dim != model.feature_dim:
        raise SageMakerModelError(
            f"{tar_path}: the model has feature_dim {model.feature_dim}, but {manifest} has {feature_dim}: "
            "the model was trained on another run's channels"
        )
    return layout
