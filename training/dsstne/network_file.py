"""DSSTNE's trained-network NetCDF file, as `train` writes and `predict` reads it (reference/dsstne.md §8).

Everything but the parameters is a global attribute: the network's (`version`, `errorFunction`, …), then
per layer `layer<i>_…` and per weight `weight<i>_…`. Each weight has a `weight<i>_bias` variable over
`weight<i>_biasDim` (N_out) and, unless shared, `weight<i>_weights` over `weight<i>_weightDim`
(N_in · N_out, row-major [N_in][N_out]). N counts the 128-padding of "auto" layers, because the layer
size is the dataset width. Attribute types follow `NNNetwork::SaveNetCDF`, `NNLayer::WriteNetCDF` and
`NNWeight::WriteNetCDF` (amazon-dsstne e429ea8), so the original `predict` can load our models.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any

import numpy as np

from training.dsstne.datasets import char_attr, read_text_attr, temporary_sibling

NN_VERSION = 0.9


class ErrorFunction(IntEnum):
    L1 = 0
    L2 = 1
    CROSS_ENTROPY = 2
    SCALED_MARGINAL_CROSS_ENTROPY = 3
    DATA_SCALED_MARGINAL_CROSS_ENTROPY = 4
    HINGE = 5
    L2_HINGE = 6


class LayerKind(IntEnum):
    INPUT = 0
    HIDDEN = 1
    OUTPUT = 2
    TARGET = 3


class LayerType(IntEnum):
    FULLY_CONNECTED = 0
    CONVOLUTIONAL = 1
    POOLING = 2


class Activation(IntEnum):
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LINEAR = 3
    PRELU = 4
    SOFTPLUS = 5
    SOFTSIGN = 6
    SOFTMAX = 7
    RELUMAX = 8
    LINEARMAX = 9
    ELU = 10
    LRELU = 11
    SELU = 12


class WeightInit(IntEnum):
    XAVIER = 0
    CAFFE_XAVIER = 1
    GAUSSIAN = 2
    UNIFORM = 3
    UNIT_BALL = 4
    CONSTANT = 5
    SELU = 6


class LayerAttr(IntFlag):
    SPARSE = 1
    DENOISING = 2
    BATCH_NORM = 4


BATCH_NORM_VARIABLES = ("scaleBN", "biasBN", "runningMeanBN", "runningVarianceBN")

# NetCDF attribute types by short name: how each value is stored.
_TYPES: dict[str, Any] = {"f32": np.float32, "i32": np.int32, "u32": np.uint32, "u64": np.uint64}


@dataclass
class LayerRecord:
    """One `layer<i>_…` block. `n` (Nx·Ny·Nz·Nw) is the layer's unit count, padding included."""

    name: str
    kind: int
    nx: int
    ny: int = 1
    nz: int = 1
    nw: int = 1
    dimensions: int = 1
    type: int = LayerType.FULLY_CONNECTED
    pooling_function: int = 0  # None
    data_set: str = ""  # the dataset name for Input/Output layers, "" for hidden ones
    activation: int = Activation.SIGMOID
    attributes: int = 0  # LayerAttr bits: Sparse, Denoising, BatchNorm
    sources: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    p_dropout: float = 0.0
    weight_init: int = WeightInit.XAVIER
    weight_init_scale: float = 1.0
    bias_init: float = 0.0
    weight_norm: float = 0.0
    delta_norm: float = 0.0
    sparseness_penalty_p: float = 0.0
    sparseness_penalty_beta: float = 0.0
    relu_slope: float = 1.0
    elu_alpha: float = 1.0
    selu_lambda: float = 1.050701
    kernel_x: int = 1
    kernel_y: int = 1
    kernel_z: int = 1
    kernel_dimensions: int = 1
    kernel_stride_x: int = 1
    kernel_stride_y: int = 1
    kernel_stride_z: int = 1
    kernel_padding_x: int = 0
    kernel_padding_y: int = 0
    kernel_padding_z: int = 0
    batch_norm: dict[str, np.ndarray] | None = None  # BATCH_NORM_VARIABLES → float32 [bnDim]

    @property
    def n(self) -> int:
        return self.nx * self.ny * self.nz * self.nw

    @property
    def sparse(self) -> bool:
        return bool(self.attributes & LayerAttr.SPARSE)


@dataclass
class WeightRecord:
    """One `weight<i>_…` block: W is float32 [n_in, n_out] (None for shared weights), bias [n_out]."""

    input_layer: str
    output_layer: str
    bias: np.ndarray
    weights: np.ndarray | None = None
    norm: float = 0.0
    locked: bool = False
    transposed: bool = False  # shared weights only
    source_input_layer: str = ""  # shared weights only
    source_output_layer: str = ""  # shared weights only
    width: int = 0  # N_out; 0 = taken from W (or the bias)
    height: int = 0  # N_in; 0 = taken from W
    length: int = 1
    depth: int = 1
    breadth: int = 1

    def __post_init__(self) -> None:
        self.bias = np.asarray(self.bias, dtype=np.float32).reshape(-1)
        if self.weights is not None:
            self.weights = np.asarray(self.weights, dtype=np.float32)
            if self.weights.ndim == 2:
                self.height = self.height or self.weights.shape[0]
                self.width = self.width or self.weights.shape[1]
        self.width = self.width or len(self.bias)

    @property
    def shared(self) -> bool:
        return self.weights is None


@dataclass
class NetworkDescription:
    """The network's global attributes and its layers, in file order."""

    name: str
    layers: list[LayerRecord]
    kind: int = 0  # FeedForward; AutoEncoder = 1
    error_function: int = ErrorFunction.CROSS_ENTROPY
    version: float = NN_VERSION
    maxout_k: int = 2
    decay: float = 0.0
    lrn_k: float = 2.0
    lrn_n: int = 5
    lrn_alpha: float = 0.0001
    lrn_beta: float = 0.75
    sparseness_penalty: bool = False
    sparseness_penalty_p: float = 0.0
    sparseness_penalty_beta: float = 0.0
    denoising: bool = False
    denoising_p: float = 0.0
    delta_boost_one: float = 1.0
    delta_boost_zero: float = 1.0
    smce_one_scale: float = 1.0
    smce_zero_scale: float = 1.0
    smce_one_target: float = 0.9
    smce_zero_target: float = 0.1
    shuffle_indices: bool = True
    checkpoint_name: str = "checkpoint"
    checkpoint_interval: int = 0
    checkpoint_epochs: int = 0

    def layer(self, name: str) -> LayerRecord:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


# (attribute name, field name, type: f32 | i32 | u32 | u64 | char | bool), in DSSTNE's write order.
NETWORK_ATTRS: tuple[tuple[str, str, str], ...] = (
    ("version", "version", "f32"),
    ("name", "name", "char"),
    ("kind", "kind", "u32"),
    ("errorFunction", "error_function", "u32"),
    ("maxout_k", "maxout_k", "i32"),
    ("decay", "decay", "f32"),
    ("LRN_k", "lrn_k", "f32"),
    ("LRN_n", "lrn_n", "i32"),
    ("LRN_alpha", "lrn_alpha", "f32"),
    ("LRN_beta", "lrn_beta", "f32"),
    ("bSparsenessPenalty", "sparseness_penalty", "bool"),
    ("sparsenessPenalty_p", "sparseness_penalty_p", "f32"),
    ("sparsenessPenalty_beta", "sparseness_penalty_beta", "f32"),
    ("bDenoising", "denoising", "bool"),
    ("denoising_p", "denoising_p", "f32"),
    ("deltaBoost_one", "delta_boost_one", "f32"),
    ("deltaBoost_zero", "delta_boost_zero", "f32"),
    ("SMCE_oneScale", "smce_one_scale", "f32"),
    ("SMCE_zeroScale", "smce_zero_scale", "f32"),
    ("SMCE_oneTarget", "smce_one_target", "f32"),
    ("SMCE_zeroTarget", "smce_zero_target", "f32"),
    ("ShuffleIndices", "shuffle_indices", "bool"),
    ("checkpoint_name", "checkpoint_name", "char"),
    ("checkpoint_interval", "checkpoint_interval", "i32"),
    ("checkpoint_epochs", "checkpoint_epochs", "i32"),
)
NETWORK_REQUIRED = frozenset({"name", "kind", "errorFunction", "layers", "weights"})

# After `layer<i>_`; sources/skips and batch norm are handled separately.
LAYER_ATTRS: tuple[tuple[str, str, str], ...] = (
    ("name", "name", "char"),
    ("kind", "kind", "u32"),
    ("type", "type", "u32"),
    ("poolingfunction", "pooling_function", "u32"),
    ("dataSet", "data_set", "char"),
    ("Nx", "nx", "u32"),
    ("Ny", "ny", "u32"),
    ("Nz", "nz", "u32"),
    ("Nw", "nw", "u32"),
    ("dimensions", "dimensions", "u32"),
    ("kernelX", "kernel_x", "u32"),
    ("kernelY", "kernel_y", "u32"),
    ("kernelZ", "kernel_z", "u32"),
    ("kernelDimensions", "kernel_dimensions", "u32"),
    ("kernelStrideX", "kernel_stride_x", "u32"),
    ("kernelStrideY", "kernel_stride_y", "u32"),
    ("kernelStrideZ", "kernel_stride_z", "u32"),
    ("kernelPaddingX", "kernel_padding_x", "u32"),
    ("kernelPaddingY", "kernel_padding_y", "u32"),
    ("kernelPaddingZ", "kernel_padding_z", "u32"),
    ("pDropout", "p_dropout", "f32"),
    ("weightInit", "weight_init", "u32"),
    ("weightInitScale", "weight_init_scale", "f32"),
    ("biasInit", "bias_init", "f32"),
    ("weightNorm", "weight_norm", "f32"),
    ("deltaNorm", "delta_norm", "f32"),
    ("activation", "activation", "u32"),
    ("sparsenessPenalty_p", "sparseness_penalty_p", "f32"),
    ("sparsenessPenalty_beta", "sparseness_penalty_beta", "f32"),
    ("RELUSlope", "relu_slope", "f32"),
    ("ELUAlpha", "elu_alpha", "f32"),
    ("SELULambda", "selu_lambda", "f32"),
    ("attributes", "attributes", "u32"),
)
LAYER_REQUIRED = frozenset({"name", "kind", "Nx", "attributes", "sources"})

# After `weight<i>_`; the shared-weight attributes and the variables are handled separately.
WEIGHT_ATTRS: tuple[tuple[str, str, str], ...] = (
    ("inputLayer", "input_layer", "char"),
    ("outputLayer", "output_layer", "char"),
    ("width", "width", "u64"),
    ("height", "height", "u64"),
    ("length", "length", "u64"),
    ("depth", "depth", "u64"),
    ("breadth", "breadth", "u64"),
    ("bShared", "", "bool"),
    ("bLocked", "locked", "bool"),
    ("norm", "norm", "f32"),
)
WEIGHT_REQUIRED = frozenset({"inputLayer", "outputLayer", "width", "height", "bShared"})


# -------------------------------------------------------------------------------------------- write


def write_network(
    path: str | os.PathLike[str],
    network: NetworkDescription,
    weights: list[WeightRecord],
    *,
    overwrite: bool = False,
) -> None:
    """Write a trained network in DSSTNE's layout, atomically.

    An existing file is never replaced (FileExistsError), like `train -n`, unless `overwrite` is set: the
    train loop re-saves its own `-n` file after every epoch once it has checked at start that it was new.
    """
    import h5netcdf

    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: network file already exists; not overwriting it")
    _check_consistency(network, weights)
    tmp = temporary_sibling(target)
    try:
        with h5netcdf.File(tmp, "w") as nc:
            _put_attrs(nc.attrs, "", NETWORK_ATTRS, network)
            nc.attrs["layers"] = np.uint32(len(network.layers))
            for i, layer in enumerate(network.layers):
                _write_layer(nc, i, layer)
            nc.attrs["weights"] = np.uint32(len(weights))
            for i, weight in enumerate(weights):
                _write_weight(nc, i, weight)
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_no_clobber(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_no_clobber(tmp: Path, target: Path) -> None:
    """Give the finished file its name unless that name is taken (a hard link fails atomically then)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(f"{target}: network file already exists; not overwriting it") from None
    except OSError as exc:  # file systems without hard links
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists():
            raise FileExistsError(f"{target}: network file already exists; not overwriting it") from None
        os.replace(tmp, target)


def _check_consistency(network: NetworkDescription, weights: list[WeightRecord]) -> None:
    names = [layer.name for layer in network.layers]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate layer names in {names}")
    for w in weights:
        for end in (w.input_layer, w.output_layer):
            if end not in names:
                raise ValueError(f"weight {w.input_layer}->{w.output_layer}: no layer named {end!r}")
        n_in, n_out = network.layer(w.input_layer).n, network.layer(w.output_layer).n
        if w.weights is not None and w.weights.shape != (n_in, n_out):
            raise ValueError(
                f"weight {w.input_layer}->{w.output_layer}: W has shape {w.weights.shape}, "
                f"the layers need ({n_in}, {n_out})"
            )
        if len(w.bias) != n_out:
            raise ValueError(
                f"weight {w.input_layer}->{w.output_layer}: bias has {len(w.bias)} entries, need {n_out}"
            )


def _put_attrs(attrs: Any, prefix: str, table: tuple[tuple[str, str, str], ...], record: object) -> None:
    for attr, name, kind in table:
        if name:
            attrs[prefix + attr] = _encode(getattr(record, name), kind)


def _encode(value: Any, kind: str) -> Any:
    if kind == "char":
        return char_attr(str(value))
    if kind == "bool":
        return np.uint32(1 if value else 0)
    return _TYPES[kind](value)


def _write_layer(nc: Any, i: int, layer: LayerRecord) -> None:
    prefix = f"layer{i}_"
    _put_attrs(nc.attrs, prefix, LAYER_ATTRS, layer)
    nc.attrs[prefix + "sources"] = np.uint32(len(layer.sources))
    for k, source in enumerate(layer.sources):
        nc.attrs[f"{prefix}source{k}"] = char_attr(source)
    nc.attrs[prefix + "skips"] = np.uint32(len(layer.skips))
    for k, skip in enumerate(layer.skips):
        nc.attrs[f"{prefix}skip{k}"] = char_attr(skip)
    if layer.batch_norm:
        size = len(next(iter(layer.batch_norm.values())))
        nc.dimensions[prefix + "bnDim"] = size
        for var in BATCH_NORM_VARIABLES:
            data = np.asarray(layer.batch_norm[var], dtype=np.float32)
            nc.create_variable(prefix + var, (prefix + "bnDim",), dtype=np.float32, data=data)


def _write_weight(nc: Any, i: int, weight: WeightRecord) -> None:
    prefix = f"weight{i}_"
    if weight.shared and not weight.height:
        raise ValueError(f"shared weight {weight.input_layer}->{weight.output_layer} needs its height (N_in)")
    _put_attrs(nc.attrs, prefix, WEIGHT_ATTRS, weight)
    nc.attrs[prefix + "bShared"] = np.uint32(1 if weight.shared else 0)
    nc.dimensions[prefix + "biasDim"] = len(weight.bias)
    nc.create_variable(prefix + "bias", (prefix + "biasDim",), dtype=np.float32, data=weight.bias)
    if weight.weights is None:
        nc.attrs[prefix + "bTransposed"] = np.uint32(1 if weight.transposed else 0)
        nc.attrs[prefix + "sourceInputLayer"] = char_attr(weight.source_input_layer)
        nc.attrs[prefix + "sourceOutputLayer"] = char_attr(weight.source_output_layer)
    else:
        # Row-major [N_in][N_out]: N_out varies fastest, as in DSSTNE's weight buffers.
        flat = np.ascontiguousarray(weight.weights, dtype=np.float32).reshape(-1)
        nc.dimensions[prefix + "weightDim"] = len(flat)
        nc.create_variable(prefix + "weights", (prefix + "weightDim",), dtype=np.float32, data=flat)


# --------------------------------------------------------------------------------------------- read


def read_network(path: str | os.PathLike[str]) -> tuple[NetworkDescription, list[WeightRecord]]:
    """Read a DSSTNE network file (ours or the original `train`'s); attributes older files lack get
    DSSTNE's defaults, missing essential ones raise ValueError naming the attribute."""
    import h5netcdf

    where = str(path)
    with h5netcdf.File(path, "r") as nc:
        attrs = nc.attrs
        _require(attrs, "", NETWORK_REQUIRED, where)
        n_layers, n_weights = int(attrs["layers"]), int(attrs["weights"])
        layers = [_read_layer(nc, i, where) for i in range(n_layers)]
        values = _get_attrs(attrs, "", NETWORK_ATTRS)
        network = NetworkDescription(layers=layers, **values)
        weights = [_read_weight(nc, i, where) for i in range(n_weights)]
    return network, weights


def _require(attrs: Any, prefix: str, names: frozenset[str], where: str) -> None:
    for name in sorted(names):
        if prefix + name not in attrs:
            raise ValueError(f"{where}: missing attribute {prefix + name!r}")


def _get_attrs(attrs: Any, prefix: str, table: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, name, kind in table:
        if not name or prefix + attr not in attrs:
            continue  # keep the dataclass default, as DSSTNE's readers do for newer attributes
        if kind == "char":
            out[name] = read_text_attr(attrs, prefix + attr)
        elif kind == "bool":
            out[name] = bool(int(attrs[prefix + attr]))
        elif kind == "f32":  # the shortest decimal that is this float32 (0.9, not 0.8999999762)
            out[name] = float(str(np.float32(attrs[prefix + attr])))
        else:
            out[name] = int(attrs[prefix + attr])
    return out


def _read_layer(nc: Any, i: int, where: str) -> LayerRecord:
    prefix = f"layer{i}_"
    attrs = nc.attrs
    _require(attrs, prefix, LAYER_REQUIRED, where)
    values = _get_attrs(attrs, prefix, LAYER_ATTRS)
    values["sources"] = [
        read_text_attr(attrs, f"{prefix}source{k}") for k in range(int(attrs[prefix + "sources"]))
    ]
    n_skips = int(attrs[prefix + "skips"]) if prefix + "skips" in attrs else 0
    values["skips"] = [read_text_attr(attrs, f"{prefix}skip{k}") for k in range(n_skips)]
    if prefix + BATCH_NORM_VARIABLES[0] in nc.variables:
        values["batch_norm"] = {
            var: np.asarray(nc.variables[prefix + var][...], dtype=np.float32) for var in BATCH_NORM_VARIABLES
        }
    return LayerRecord(**values)


def _read_weight(nc: Any, i: int, where: str) -> WeightRecord:
    prefix = f"weight{i}_"
    attrs = nc.attrs
    _require(attrs, prefix, WEIGHT_REQUIRED, where)
    values = _get_attrs(attrs, prefix, WEIGHT_ATTRS)
    if prefix + "bias" not in nc.variables:
        raise ValueError(f"{where}: missing variable {prefix + 'bias'!r}")
    values["bias"] = np.asarray(nc.variables[prefix + "bias"][...], dtype=np.float32)
    if int(attrs[prefix + "bShared"]):
        shared = _get_attrs(
            attrs,
            prefix,
            (
                ("bTransposed", "transposed", "bool"),
                ("sourceInputLayer", "source_input_layer", "char"),
                ("sourceOutputLayer", "source_output_layer", "char"),
            ),
        )
        return WeightRecord(**values, **shared)
    if prefix + "weights" not in nc.variables:
        raise ValueError(f"{where}: missing variable {prefix + 'weights'!r}")
    flat = np.asarray(nc.variables[prefix + "weights"][...], dtype=np.float32)
    n_in, n_out = values["height"], values["width"]
    if flat.size == n_in * n_out:  # fully connected: [N_in][N_out]
        values["weights"] = flat.reshape(n_in, n_out)
    else:  # convolution filters keep DSSTNE's flat layout
        values["weights"] = flat
    return WeightRecord(**values)
