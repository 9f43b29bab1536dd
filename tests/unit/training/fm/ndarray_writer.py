"""A test-only writer of MXNet NDArray-list files and SageMaker FM model tarballs.

Written from the format description (../shared/reference/sagemaker-fm.md §5.2, apache/mxnet v1.x
`NDArray::Save`, dmlc serializer), not from `training.fm.mxnet_params`, so that the reader is checked
against the format and not against itself. Checked once against mxnet 1.9.1 itself (outside this
environment): `mx.nd.save` of the reference's example dict, of a list of float32/float64/int32 arrays,
and `npx.save` of V3 arrays gave exactly this writer's bytes; `mx.nd.load` read its V1 arrays back.
Knobs allow writing the malformed files the tests need.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LIST_HEADER = 0x112
ARRAY_MAGIC = {"V1": 0xF993FAC8, "V2": 0xF993FAC9, "V3": 0xF993FACA}
TYPE_FLAG = {
    np.dtype(np.float32): 0,
    np.dtype(np.float64): 1,
    np.dtype(np.float16): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int8): 5,
    np.dtype(np.int64): 6,
}
CPU = 1


def array_bytes(
    array: np.ndarray | None,
    *,
    version: str = "V2",
    stype: int = 0,
    magic: int | None = None,
    dev_type: int = CPU,
    type_flag: int | None = None,
) -> bytes:
    """One array as `NDArray::Save` writes it; None writes a "none" array (no shape)."""
    out = struct.pack("<I", ARRAY_MAGIC[version] if magic is None else magic)
    if version != "V1":
        out += struct.pack("<i", -1 if array is None else stype)  # a none array's storage is undefined
    if array is None:
        return out + struct.pack("<i", -1 if version == "V3" else 0)
    out += struct.pack("<i", array.ndim) + b"".join(struct.pack("<q", d) for d in array.shape)
    out += struct.pack("<ii", dev_type, 0)
    out += struct.pack("<i", TYPE_FLAG[array.dtype] if type_flag is None else type_flag)
    return out + np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


def ndarray_list(
    arrays: Sequence[np.ndarray | None] | Mapping[str, np.ndarray | None],
    *,
    version: str = "V2",
    header: int = LIST_HEADER,
    names_count: int | None = None,
    **array_options: Any,
) -> bytes:
    """The whole file: a dict saves names (in order), a list saves none."""
    if isinstance(arrays, Mapping):
        names: list[str] = list(arrays)
        values = list(arrays.values())
    else:
        names, values = [], list(arrays)
    out = struct.pack("<QQQ", header, 0, len(values))
    out += b"".join(array_bytes(a, version=version, **array_options) for a in values)
    out += struct.pack("<Q", len(names) if names_count is None else names_count)
    for name in names:
        raw = name.encode("utf-8")
        out += struct.pack("<Q", len(raw)) + raw
    return out


def fm_params(
    w0: float, w: np.ndarray, v: np.ndarray, *, scheme: str = "A", transpose_v: bool | None = None
) -> dict[str, np.ndarray]:
    """FM parameters named as SageMaker saves them (`arg:` prefixes), in scheme A or B.

    `v` is given as (feature_dim, num_factors); scheme A stores it so, B transposed, unless
    `transpose_v` says otherwise."""
    transpose = (scheme == "B") if transpose_v is None else transpose_v
    factors = np.ascontiguousarray(v.T if transpose else v)
    if scheme == "A":
        return {
            "arg:w0_weight": np.array([w0], np.float32),
            "arg:w1_weight": w.reshape(-1, 1).astype(np.float32),
            "arg:v": factors,
        }
    return {
        "arg:Linear_Plus_Bias_weight": w.reshape(1, -1).astype(np.float32),
        "arg:Linear_Plus_Bias_bias": np.array([w0], np.float32),
        "arg:v": factors,
    }


def meta_json(feature_dim: int, num_factors: int, predictor_type: str = "binary_classifier") -> bytes:
    """meta.json as SageMaker writes it: every training parameter a string."""
    training = {
        "feature_dim": str(feature_dim),
        "num_factors": str(num_factors),
        "predictor_type": predictor_type,
        "epochs": "20",
        "mini_batch_size": "1000",
    }
    return json.dumps({"training_parameters": training, "version": 1, "epoch_number": 20}).encode()


SYMBOL_JSON = json.dumps({"nodes": [{"op": "null", "name": "data", "inputs": []}], "heads": [[0, 0, 0]]})


def model_zip(members: Mapping[str, bytes]) -> bytes:
    """model_algo-1 as a stored (uncompressed) ZIP, as in real artifacts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def model_tar(path: Path, members: Mapping[str, bytes]) -> Path:
    """A gzip tarball holding the given members (model_algo-1, …)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def fm_model_tar(
    path: Path,
    params: Mapping[str, np.ndarray | None],
    *,
    feature_dim: int,
    num_factors: int,
    predictor_type: str = "binary_classifier",
    version: str = "V2",
) -> Path:
    """A complete SageMaker FM model.tar.gz."""
    zipped = model_zip(
        {
            "meta.json": meta_json(feature_dim, num_factors, predictor_type),
            "symbol.json": SYMBOL_JSON.encode(),
            "params": ndarray_list(params, version=version),
        }
    )
    return model_tar(path, {"model_algo-1": zipped})
