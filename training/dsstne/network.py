"""The bridge between DSSTNE's files (config.json, trained-network NetCDF) and the engine.

The engine runs one shape of network: a sparse Input layer, a chain of FullyConnected Hidden layers and
one FullyConnected Sigmoid Output layer, trained with ScaledMarginalCrossEntropy, CrossEntropy or L2 on
sparse Boolean targets (dsstne.md §5). `build_spec` turns a parsed config into that shape and refuses,
naming the feature, everything else DSSTNE would accept, because training a different network than the
one written in the config would silently waste a run. `save_network` / `load_network` go through
`network_file` so that files move both ways between this engine and DSSTNE's `predict`.

Sizes follow DSSTNE: Input and Output layers take their dataset's width, which generateNetCDF pads to a
multiple of 128 (an explicit N is accepted when it pads to that width); Hidden layers use N as given.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import torch

from training.dsstne.config import ConfigError, LayerConfig, NetworkConfig
from training.dsstne.datasets import round_up_width
from training.dsstne.engine import ACTIVATIONS, LayerSpec, NetworkSpec, Weights
from training.dsstne.init import init_weight
from training.dsstne.losses import SparseLoss
from training.dsstne.network_file import (
    Activation,
    ErrorFunction,
    LayerAttr,
    LayerKind,
    LayerRecord,
    LayerType,
    NetworkDescription,
    WeightInit,
    WeightRecord,
    read_network,
    write_network,
)

FIXED_SEED = 12134  # DSSTNE seeds cuRAND with this in `train` and `predict`

SUPPORTED_LOSSES = ("smce", "crossentropy", "l2")

_ERROR_CODES: dict[str, int] = {
    "l1": ErrorFunction.L1,
    "l2": ErrorFunction.L2,
    "crossentropy": ErrorFunction.CROSS_ENTROPY,
    "smce": ErrorFunction.SCALED_MARGINAL_CROSS_ENTROPY,
    "dsmce": ErrorFunction.DATA_SCALED_MARGINAL_CROSS_ENTROPY,
    "hinge": ErrorFunction.HINGE,
    "l2hinge": ErrorFunction.L2_HINGE,
}
_ERROR_TITLES: dict[str, str] = {
    "l1": "L1",
    "l2": "L2",
    "crossentropy": "CrossEntropy",
    "smce": "ScaledMarginalCrossEntropy",
    "dsmce": "DataScaledMarginalCrossEntropy",
    "hinge": "Hinge",
    "l2hinge": "L2Hinge",
}
_ACTIVATION_CODES: dict[str, int] = {
    "sigmoid": Activation.SIGMOID,
    "tanh": Activation.TANH,
    "relu": Activation.RELU,
    "linear": Activation.LINEAR,
    "softplus": Activation.SOFTPLUS,
    "softsign": Activation.SOFTSIGN,
    "softmax": Activation.SOFTMAX,
    "relumax": Activation.RELUMAX,
    "linearmax": Activation.LINEARMAX,
    "elu": Activation.ELU,
    "lrelu": Activation.LRELU,
    "selu": Activation.SELU,
}
# What a stored activation computes; SoftPlus, SoftSign, ReluMax and LinearMax are identity in DSSTNE.
_EFFECTIVE_ACTIVATION: dict[int, str] = {
    Activation.SIGMOID: "sigmoid",
    Activation.TANH: "tanh",
    Activation.RELU: "relu",
    Activation.LINEAR: "linear",
    Activation.SOFTPLUS: "linear",
    Activation.SOFTSIGN: "linear",
    Activation.RELUMAX: "linear",
    Activation.LINEARMAX: "linear",
}
_WEIGHT_INIT_CODES: dict[str, int] = {
    "xavier": WeightInit.XAVIER,
    "caffexavier": WeightInit.CAFFE_XAVIER,
    "gaussian": WeightInit.GAUSSIAN,
    "uniform": WeightInit.UNIFORM,
    "unitball": WeightInit.UNIT_BALL,
    "constant": WeightInit.CONSTANT,
    "selu": WeightInit.SELU,
}
_KIND_CODES = {"input": LayerKind.INPUT, "hidden": LayerKind.HIDDEN, "output": LayerKind.OUTPUT}
_TYPE_TITLES = {"fullyconnected": "FullyConnected", "convolutional": "Convolutional", "pooling": "Pooling"}


class UnsupportedFeatureError(ConfigError):
    """A network DSSTNE accepts but this engine does not run (yet); the message names the feature."""

    def __init__(self, source: str, path: str, feature: str) -> None:
        super().__init__(source, path, f"not supported by this engine yet: {feature}")
        self.feature = feature


@dataclass(frozen=True)
class _Node:
    """What the chain check needs of a layer, from a config or from a network file."""

    name: str
    kind: str  # "input" | "hidden" | "output"; anything else ("target", …) is refused
    sources: tuple[str, ...]
    skips: tuple[str, ...]
    path: str  # where to point an error: "Layers[1]" or "layer1_"


def _linear_chain(nodes: Sequence[_Node], fail: Callable[[str, str], NoReturn]) -> list[int]:
    """Positions of Input → Hidden … → Output, refusing every other graph (branches, skips, Targets)."""
    for kind, title in (("input", "Input"), ("output", "Output")):
        count = sum(node.kind == kind for node in nodes)
        if count != 1:
            fail("", f"{count} {title} layers (exactly one is supported)")
    for node in nodes:
        if node.kind not in ("input", "hidden", "output"):
            fail(node.path, f"{node.kind.title()} layers ({node.name!r})")
        if node.skips:
            fail(node.path, f"Skip connections (layer {node.name!r} skips from {', '.join(node.skips)})")
        if node.kind != "input" and len(node.sources) != 1:
            fail(node.path, f"several sources (layer {node.name!r} has Source {', '.join(node.sources)})")
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for source in node.sources:
            consumers.setdefault(source, []).append(i)
    for name, users in consumers.items():
        if len(users) > 1:
            fed = ", ".join(nodes[i].name for i in users)
            fail("", f"a layer feeding several layers ({name!r} feeds {fed})")
    position = next(i for i, node in enumerate(nodes) if node.kind == "input")
    chain = [position]
    while nodes[chain[-1]].name in consumers:
        chain.append(consumers[nodes[chain[-1]].name][0])
        if len(chain) > len(nodes):
            fail("", "a cycle of layers")
    if nodes[chain[-1]].kind != "output":
        fail(nodes[chain[-1]].path, f"a network that ends in layer {nodes[chain[-1]].name!r}, not the Output")
    if len(chain) != len(nodes):
        stray = ", ".join(node.name for i, node in enumerate(nodes) if i not in chain)
        fail("", f"layers outside the Input → Output chain ({stray})")
    if len(chain) < 3:
        fail("", "a network without Hidden layers (the Output is fed by the Input directly)")
    return chain


# ---------------------------------------------------------------------------------------- config → spec


def _config_chain(config: NetworkConfig) -> list[tuple[str, LayerConfig]]:
    """The config's layers in chain order with their key paths, after the feature checks."""

    def fail(path: str, feature: str) -> NoReturn:
        raise UnsupportedFeatureError(config.source, path, feature)

    nodes = [
        _Node(layer.name, layer.kind, layer.sources, layer.skips, f"Layers[{i}]")
        for i, layer in enumerate(config.layers)
    ]
    chain = [(f"Layers[{i}]", config.layers[i]) for i in _linear_chain(nodes, fail)]
    if config.error_function not in SUPPORTED_LOSSES:
        fail("ErrorFunction", f"ErrorFunction {_ERROR_TITLES[config.error_function]}")
    for path, layer in chain:
        _check_layer(layer, path, fail)
    return chain


def _check_layer(layer: LayerConfig, path: str, fail: Callable[[str, str], NoReturn]) -> None:
    what = f"(layer {layer.name!r})"
    if layer.type != "fullyconnected":
        fail(path, f"{_TYPE_TITLES[layer.type]} layers {what}")
    if layer.kind == "input":
        return  # DSSTNE ignores pDropout on sparse inputs, and every dataset here is sparse
    features = [
        (layer.batch_normalization, "BatchNormalization"),
        (layer.weight_norm > 0, "WeightNorm"),
        (layer.delta_norm > 0, "DeltaNorm"),
        (bool(layer.shared_weights), "SharedWeights"),
        (layer.p_dropout > 0, f"pDropout on {layer.kind.title()} layers"),
    ]
    for present, name in features:
        if present:
            fail(path, f"{name} {what}")
    activation = layer.effective_activation
    if layer.kind == "output" and activation != "sigmoid":
        fail(path, f"a {layer.activation.title()} output layer {what}; the output must be Sigmoid")
    if activation not in ACTIVATIONS:
        fail(path, f"{layer.activation.title()} activation {what}")


def _io_width(config: NetworkConfig, path: str, layer: LayerConfig, widths: Mapping[str, int]) -> int:
    """An Input/Output layer's size: its dataset's (padded) width; an explicit N must pad to it."""
    width = widths.get(layer.dataset or "")
    if width is None:
        available = ", ".join(sorted(widths)) or "none loaded"
        raise ConfigError(
            config.source,
            path,
            f"DataSet {layer.dataset!r} of layer {layer.name!r} matches no dataset (available: {available})",
        )
    if isinstance(layer.n, tuple) and round_up_width(math.prod(layer.n)) != width:
        raise ConfigError(
            config.source,
            f"{path}.N",
            f"layer {layer.name!r} has N {math.prod(layer.n)}, but DataSet {layer.dataset!r} is "
            f'{width} wide (use "auto")',
        )
    return width


def build_spec(config: NetworkConfig, widths: Mapping[str, int]) -> tuple[NetworkSpec, str, str]:
    """The engine's network for a config and the widths of the loaded datasets (name → width).

    Returns (spec, input DataSet name, output DataSet name). Raises `UnsupportedFeatureError` for what
    the engine does not run and `ConfigError` for a DataSet that matches no loaded dataset.
    """
    chain = _config_chain(config)
    (in_path, first), last = chain[0], chain[-1][1]
    input_width = _io_width(config, in_path, first, widths)
    layers = []
    for path, layer in chain[1:]:
        width = _io_width(config, path, layer, widths) if layer is last else layer.size
        penalty = config.sparseness_penalty_for(layer)
        layers.append(
            LayerSpec(
                width=width,
                activation=layer.effective_activation,
                sparseness=None if penalty is None else (penalty.p, penalty.beta),
            )
        )
    spec = NetworkSpec(
        input_width=input_width,
        layers=tuple(layers),
        loss=_loss(config),
        denoising=config.denoising.p if config.denoising.enabled else 0.0,
    )
    return spec, first.dataset or "", last.dataset or ""  # _io_width found both names


def _loss(config: NetworkConfig) -> SparseLoss:
    smce, boost = config.smce, config.delta_boost
    return SparseLoss(
        name=config.error_function,
        one_target=smce.one_target,
        zero_target=smce.zero_target,
        one_scale=smce.one_scale,
        zero_scale=smce.zero_scale,
        boost_one=boost.one,
        boost_zero=boost.zero,
    )


def _widths(spec: NetworkSpec) -> list[int]:
    return [spec.input_width] + [layer.width for layer in spec.layers]


def _checked_chain(config: NetworkConfig, spec: NetworkSpec) -> list[LayerConfig]:
    chain = [layer for _, layer in _config_chain(config)]
    if len(chain) != len(spec.layers) + 1:
        raise ValueError(f"the config has {len(chain)} layers, the spec {len(spec.layers) + 1}")
    return chain


def initial_weights(
    config: NetworkConfig,
    spec: NetworkSpec,
    seed: int = FIXED_SEED,
    device: torch.device | str = "cpu",
) -> Weights:
    """Each weight drawn by its output layer's WeightInit (dsstne.md §4.3), from one seeded stream.

    The draws happen on the CPU and are then moved, so a seed gives the same start on every device.
    """
    chain = _checked_chain(config, spec)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    widths = _widths(spec)
    w, b = [], []
    for layer, (n_in, n_out) in zip(chain[1:], itertools.pairwise(widths), strict=True):
        init = layer.weight_init
        weight, bias = init_weight(init.scheme, init.scale, init.bias, n_in, n_out, generator)
        w.append(weight.to(device))
        b.append(bias.to(device))
    return Weights(w, b)


# ------------------------------------------------------------------------------------------ saving


def save_network(
    path: str | os.PathLike[str],
    config: NetworkConfig,
    spec: NetworkSpec,
    weights: Weights,
    *,
    overwrite: bool = False,
    checkpoint_name: str = "checkpoint",
    checkpoint_interval: int = 0,
) -> None:
    """Write the network in DSSTNE's trained-network layout, so DSSTNE's `predict` can use it.

    The layer and network attributes come from the config (as DSSTNE's SaveNetCDF writes its own
    descriptor: declared activations, the layers' own penalty overrides), the sizes from the spec.
    """
    chain = _checked_chain(config, spec)
    widths = _widths(spec)
    records = [
        _layer_record(layer, width, config, previous.name if previous else None)
        for previous, layer, width in zip([None, *chain[:-1]], chain, widths, strict=True)
    ]
    description = NetworkDescription(
        name=config.name,
        layers=records,
        kind=0 if config.kind == "feedforward" else 1,
        error_function=_ERROR_CODES[config.error_function],
        maxout_k=config.maxout_k,
        decay=config.decay,
        lrn_k=config.lrn.k,
        lrn_n=config.lrn.n,
        lrn_alpha=config.lrn.alpha,
        lrn_beta=config.lrn.beta,
        sparseness_penalty=config.sparseness_penalty.enabled,
        sparseness_penalty_p=config.sparseness_penalty.p,
        sparseness_penalty_beta=config.sparseness_penalty.beta,
        denoising=spec.denoising > 0,
        denoising_p=spec.denoising,
        delta_boost_one=spec.loss.boost_one,
        delta_boost_zero=spec.loss.boost_zero,
        smce_one_scale=spec.loss.one_scale,
        smce_zero_scale=spec.loss.zero_scale,
        smce_one_target=spec.loss.one_target,
        smce_zero_target=spec.loss.zero_target,
        shuffle_indices=config.shuffle_indices,
        checkpoint_name=checkpoint_name,
        checkpoint_interval=checkpoint_interval,
    )
    records_w = [
        WeightRecord(
            input_layer=source.name,
            output_layer=layer.name,
            bias=b.detach().to("cpu", torch.float32).numpy(),
            weights=w.detach().to("cpu", torch.float32).numpy(),
            norm=layer.weight_norm,
        )
        for (source, layer), w, b in zip(itertools.pairwise(chain), weights.w, weights.b, strict=True)
    ]
    write_network(path, description, records_w, overwrite=overwrite)


def _layer_record(layer: LayerConfig, width: int, config: NetworkConfig, source: str | None) -> LayerRecord:
    dims = layer.n if isinstance(layer.n, tuple) and math.prod(layer.n) == width else (width,)
    nx, ny, nz, nw = (*dims, 1, 1, 1)[:4]
    attributes = 0
    if layer.kind == "input":
        attributes = LayerAttr.SPARSE | (LayerAttr.DENOISING if config.denoising.enabled else 0)
    elif layer.sparse:
        attributes = LayerAttr.SPARSE
    return LayerRecord(
        name=layer.name,
        kind=_KIND_CODES[layer.kind],
        nx=nx,
        ny=ny,
        nz=nz,
        nw=nw,
        dimensions=len(dims),
        type=LayerType.FULLY_CONNECTED,
        data_set=layer.dataset or "",
        activation=_ACTIVATION_CODES[layer.activation],
        attributes=int(attributes),
        sources=[source] if source else [],
        p_dropout=layer.p_dropout,
        weight_init=_WEIGHT_INIT_CODES[layer.weight_init.scheme],
        weight_init_scale=layer.weight_init.scale,
        bias_init=layer.weight_init.bias,
        weight_norm=layer.weight_norm,
        delta_norm=layer.delta_norm,
        sparseness_penalty_p=layer.sparseness_penalty.p,
        sparseness_penalty_beta=layer.sparseness_penalty.beta,
        relu_slope=layer.relu_slope,
        elu_alpha=layer.elu_alpha,
        selu_lambda=layer.selu_lambda,
    )


# ----------------------------------------------------------------------------------------- loading

_LOSS_NAMES: dict[int, str] = {
    ErrorFunction.L2: "l2",
    ErrorFunction.CROSS_ENTROPY: "crossentropy",
    ErrorFunction.SCALED_MARGINAL_CROSS_ENTROPY: "smce",
}
_KIND_NAMES = {0: "input", 1: "hidden", 2: "output", 3: "target"}


def load_network(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[NetworkSpec, Weights, str, str]:
    """A trained network (ours or DSSTNE's): (spec, weights, input DataSet name, output DataSet name).

    Features that only act while training (pDropout, WeightNorm, DeltaNorm) are accepted, because
    prediction does not use them; anything that changes the forward pass and the engine cannot compute
    raises `UnsupportedFeatureError`. A malformed file raises ValueError naming it.
    """
    where = os.fspath(path)
    network, records = read_network(path)

    def fail(at: str, feature: str) -> NoReturn:
        raise UnsupportedFeatureError(where, at, feature)

    layers = network.layers
    nodes = [
        _Node(
            name=layer.name,
            kind=_KIND_NAMES.get(layer.kind, f"kind-{layer.kind}"),
            sources=tuple(layer.sources),
            skips=tuple(layer.skips),
            path=f"layer{i}_",
        )
        for i, layer in enumerate(layers)
    ]
    positions = _linear_chain(nodes, fail)
    chain = [layers[i] for i in positions]
    loss_name = _LOSS_NAMES.get(network.error_function)
    if loss_name is None:
        fail("errorFunction", f"error function {_error_title(network.error_function)}")
    for i, record in zip(positions, chain, strict=True):
        at = f"layer {record.name!r}"
        if record.type != LayerType.FULLY_CONNECTED:
            fail(f"layer{i}_type", f"non-FullyConnected layers ({at})")
        if record.batch_norm or record.attributes & LayerAttr.BATCH_NORM:
            fail(f"layer{i}_attributes", f"BatchNormalization ({at})")
        if record.kind != LayerKind.INPUT and record.activation not in _EFFECTIVE_ACTIVATION:
            fail(f"layer{i}_activation", f"{_activation_title(record.activation)} ({at})")
    output = chain[-1]
    if _EFFECTIVE_ACTIVATION[output.activation] != "sigmoid":
        fail("", f"a {_activation_title(output.activation)} output layer; the output must be Sigmoid")

    by_ends = {(r.input_layer, r.output_layer): r for r in records}
    w, b = [], []
    for source, layer in itertools.pairwise(chain):
        weight = by_ends.get((source.name, layer.name))
        if weight is None:
            raise ValueError(f"{where}: no weight from layer {source.name!r} to layer {layer.name!r}")
        if weight.shared:
            fail("", f"SharedWeights (weight {source.name!r} → {layer.name!r})")
        assert weight.weights is not None
        if weight.weights.shape != (source.n, layer.n) or weight.bias.shape != (layer.n,):
            raise ValueError(
                f"{where}: weight {source.name!r} → {layer.name!r} has shape {weight.weights.shape}, "
                f"the layers need ({source.n}, {layer.n})"
            )
        w.append(torch.from_numpy(np.array(weight.weights, dtype=np.float32)).to(device))
        b.append(torch.from_numpy(np.array(weight.bias, dtype=np.float32)).to(device))

    spec = NetworkSpec(
        input_width=chain[0].n,
        layers=tuple(_layer_spec(network, record) for record in chain[1:]),
        loss=SparseLoss(
            name=loss_name,
            one_target=network.smce_one_target,
            zero_target=network.smce_zero_target,
            one_scale=network.smce_one_scale,
            zero_scale=network.smce_zero_scale,
            boost_one=network.delta_boost_one,
            boost_zero=network.delta_boost_zero,
        ),
        denoising=network.denoising_p if network.denoising and network.denoising_p > 0 else 0.0,
    )
    return spec, Weights(w, b), chain[0].data_set, output.data_set


def _layer_spec(network: NetworkDescription, record: LayerRecord) -> LayerSpec:
    """DSSTNE's rule for the penalty (as `NetworkConfig.sparseness_penalty_for`), from stored values."""
    penalty = None
    if record.kind == LayerKind.HIDDEN and record.sparse and network.sparseness_penalty:
        own_p, own_beta = record.sparseness_penalty_p, record.sparseness_penalty_beta
        penalty = (
            own_p if own_p > 0 else network.sparseness_penalty_p,
            own_beta if own_beta > 0 else network.sparseness_penalty_beta,
        )
    return LayerSpec(width=record.n, activation=_EFFECTIVE_ACTIVATION[record.activation], sparseness=penalty)


def _error_title(code: int) -> str:
    names = {int(v): _ERROR_TITLES[k] for k, v in _ERROR_CODES.items()}
    return names.get(code, f"code {code}")


def _activation_title(code: int) -> str:
    try:
        return f"{Activation(code).name.title().replace('_', '')} activation"
    except ValueError:
        return f"activation code {code}"
