"""DSSTNE's network `config.json` parsed into typed, immutable objects (reference: dsstne.md §4).

A DSSTNE user's `config.json` must work unchanged, so the rules are DSSTNE's (`LoadNeuralNetworkJSON`):
keys and string enum values are case-insensitive, every unknown key is an error, the defaults are
`NNNetworkDescriptor`'s (ShuffleIndices true, ErrorFunction CrossEntropy, SMCE 0.9/0.1/1/1, ...), and a
layer key that does not apply to the layer's kind is rejected as DSSTNE rejects it. Where DSSTNE would
silently coerce or ignore a value (a string where a number belongs, an N that is neither a number nor
"auto"), this parser refuses with a message that names the file, the key path and the reason, because a
silent surprise costs a user a training run.

Enum values are normalised to one lower-case canonical spelling (see `Activation`, `ErrorFunction`, ...).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

NetworkKind = Literal["feedforward", "autoencoder"]
ErrorFunction = Literal["l1", "l2", "l2hinge", "hinge", "crossentropy", "smce", "dsmce"]
LayerKind = Literal["input", "hidden", "output", "target"]
LayerType = Literal["fullyconnected", "convolutional", "pooling"]
Activation = Literal[
    "sigmoid",
    "tanh",
    "linear",
    "relu",
    "lrelu",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "softmax",
    "relumax",
    "linearmax",
]
WeightInitScheme = Literal["xavier", "caffexavier", "gaussian", "uniform", "unitball", "constant", "selu"]
PoolingFunction = Literal["max", "maxout", "dotproduct", "cosine", "average", "lrn"]

NN_VERSION = 0.9
"""DSSTNE's `NN_VERSION`: the Version a config gets when it names none."""

# Activations DSSTNE accepts but `CalculateActivation` does not implement: they behave as identity.
IDENTITY_QUIRK_ACTIVATIONS: frozenset[Activation] = frozenset(
    {"softplus", "softsign", "relumax", "linearmax"}
)

_KINDS: dict[str, NetworkKind] = {"feedforward": "feedforward", "autoencoder": "autoencoder"}
_ERROR_FUNCTIONS: dict[str, ErrorFunction] = {
    "l1": "l1",
    "l2": "l2",
    "l2hinge": "l2hinge",
    "hinge": "hinge",
    "crossentropy": "crossentropy",
    "cross entropy": "crossentropy",
    "scaledmarginalcrossentropy": "smce",
    "datascaledmarginalcrossentropy": "dsmce",
}
_LAYER_KINDS: dict[str, LayerKind] = {
    "input": "input",
    "hidden": "hidden",
    "output": "output",
    "target": "target",
}
_LAYER_TYPES: dict[str, LayerType] = {
    "fullyconnected": "fullyconnected",
    "convolutional": "convolutional",
    "pooling": "pooling",
}
_ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "linear": "linear",
    "relu": "relu",
    "rectifiedlinear": "relu",
    "lrelu": "lrelu",
    "leakyrectifiedlinear": "lrelu",
    "elu": "elu",
    "exponentiallinear": "elu",
    "selu": "selu",
    "scaledexponentiallinear": "selu",
    "softplus": "softplus",
    "softsign": "softsign",
    "softmax": "softmax",
    "relumax": "relumax",
    "linearmax": "linearmax",
}
_SCHEMES: dict[str, WeightInitScheme] = {
    s: s for s in ("xavier", "caffexavier", "gaussian", "uniform", "unitball", "constant", "selu")
}
_POOLING: dict[str, PoolingFunction] = {
    "max": "max",
    "maxout": "maxout",
    "dotproduct": "dotproduct",
    "cosine": "cosine",
    "average": "average",
    "lrn": "lrn",
    "localresponsenormalization": "lrn",
}


class ConfigError(ValueError):
    """A config.json that DSSTNE would refuse (or that would silently misbehave), located by key path."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        super().__init__(f"{source}: {path}: {reason}" if path else f"{source}: {reason}")


# ---------------------------------------------------------------------------------------------------------
# The typed configuration


@dataclass(frozen=True)
class SparsenessPenaltyConfig:
    """KL sparseness penalty `{p, beta}`; on by network beta > 0, for sparse Hidden layers only (§5.4)."""

    p: float = 0.0
    beta: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.beta > 0.0


@dataclass(frozen=True)
class DenoisingConfig:
    """Input denoising `{p}`; on iff p > 0, for sparse Input layers during training (§5.2)."""

    p: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.p > 0.0


@dataclass(frozen=True)
class DeltaBoostConfig:
    """Scales of the positive / zero output deltas for CrossEntropy and L2 (§5.5)."""

    one: float = 1.0
    zero: float = 1.0


@dataclass(frozen=True)
class SmceConfig:
    """ScaledMarginalCrossEntropy parameters; DSSTNE's defaults are 0.9 / 0.1 / 1 / 1 (§4.1)."""

    one_target: float = 0.9
    zero_target: float = 0.1
    one_scale: float = 1.0
    zero_scale: float = 1.0


@dataclass(frozen=True)
class LrnConfig:
    """Local response normalisation `{k, n, alpha, beta}` (CNN only; parsed for compatibility)."""

    k: float = 2.0
    n: int = 5
    alpha: float = 1e-4
    beta: float = 0.75


@dataclass(frozen=True)
class WeightInitConfig:
    """`{Scheme, Scale, Bias}` of a layer's incoming weights (§4.3; see `training.dsstne.init`)."""

    scheme: WeightInitScheme = "xavier"
    scale: float = 1.0
    bias: float = 0.0


@dataclass(frozen=True)
class SharedWeightConfig:
    """Tied weights: the weight from `input_layer` reuses `source_input_layer` → `source_output_layer`."""

    input_layer: str
    source_input_layer: str
    source_output_layer: str
    transposed: bool = False


@dataclass(frozen=True)
class LayerConfig:
    """One entry of `Layers`, with every default filled in.

    `n` is the dimensions tuple (1 to 4 ints; the layer has their product units), "auto" until
    `NetworkConfig.resolve_sizes` replaces it by its dataset's width, or None for a Convolutional or
    Pooling layer whose size DSSTNE derives from its sources. `relu_slope`, `elu_alpha` and
    `selu_lambda` already hold the network-level value where the layer sets none.
    """

    name: str
    kind: LayerKind
    type: LayerType = "fullyconnected"
    n: tuple[int, ...] | Literal["auto"] | None = None
    sparse: bool = False
    p_dropout: float = 0.0
    dataset: str | None = None
    sources: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()
    kernel: tuple[int, ...] | None = None
    kernel_stride: tuple[int, ...] | None = None
    activation: Activation = "sigmoid"
    relu_slope: float = 1.0
    elu_alpha: float = 1.0
    selu_lambda: float = 1.050701
    weight_norm: float = 0.0
    delta_norm: float = 0.0
    weight_init: WeightInitConfig = WeightInitConfig()
    shared_weights: tuple[SharedWeightConfig, ...] = ()
    batch_normalization: bool = False
    sparseness_penalty: SparsenessPenaltyConfig = SparsenessPenaltyConfig()
    pooling_function: PoolingFunction | None = None

    @property
    def is_auto(self) -> bool:
        return self.n == "auto"

    @property
    def size(self) -> int:
        """Number of units (product of the dimensions), before DSSTNE's 128-padding of strides."""
        if not isinstance(self.n, tuple):
            raise ValueError(f"layer {self.name!r} has no resolved size (N is {self.n!r})")
        return math.prod(self.n)

    @property
    def effective_activation(self) -> Activation:
        """The activation DSSTNE actually computes: SoftPlus, SoftSign, ReluMax, LinearMax act as identity."""
        return "linear" if self.activation in IDENTITY_QUIRK_ACTIVATIONS else self.activation


@dataclass(frozen=True)
class NetworkConfig:
    """A whole `config.json`: network-level settings and the layers in file order."""

    layers: tuple[LayerConfig, ...]
    version: float = NN_VERSION
    name: str = ""
    kind: NetworkKind = "feedforward"
    shuffle_indices: bool = True
    error_function: ErrorFunction = "crossentropy"
    sparseness_penalty: SparsenessPenaltyConfig = SparsenessPenaltyConfig()
    denoising: DenoisingConfig = DenoisingConfig()
    delta_boost: DeltaBoostConfig = DeltaBoostConfig()
    smce: SmceConfig = SmceConfig()
    lrn: LrnConfig = LrnConfig()
    maxout_k: int = 2
    relu_slope: float = 1.0
    elu_alpha: float = 1.0
    selu_lambda: float = 1.050701
    decay: float = 0.0
    weights_data: str | None = None
    source: str = field(default="config.json", compare=False)

    def layer(self, name: str) -> LayerConfig:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def layers_of_kind(self, kind: LayerKind) -> tuple[LayerConfig, ...]:
        return tuple(layer for layer in self.layers if layer.kind == kind)

    @property
    def is_resolved(self) -> bool:
        return not any(layer.is_auto for layer in self.layers)

    def sparseness_penalty_for(self, layer: LayerConfig) -> SparsenessPenaltyConfig | None:
        """The (p, beta) the penalty uses on `layer`, or None where it does not apply (§5.4).

        It applies to sparse Hidden layers when the network's beta > 0; the layer's own p and beta
        each replace the network's where they are > 0 (DSSTNE decides them one by one).
        """
        if layer.kind != "hidden" or not layer.sparse or not self.sparseness_penalty.enabled:
            return None
        own, net = layer.sparseness_penalty, self.sparseness_penalty
        return SparsenessPenaltyConfig(
            p=own.p if own.p > 0.0 else net.p, beta=own.beta if own.beta > 0.0 else net.beta
        )

    def resolve_sizes(self, dataset_widths: Mapping[str, int]) -> NetworkConfig:
        """Replace each "auto" N by the width of the dataset its `DataSet` names (as DSSTNE does at load)."""
        layers = []
        for i, layer in enumerate(self.layers):
            if layer.is_auto:
                width = dataset_widths.get(layer.dataset or "")
                if width is None:
                    available = ", ".join(sorted(dataset_widths)) or "none loaded"
                    raise ConfigError(
                        self.source,
                        f"Layers[{i}]",
                        f"DataSet {layer.dataset!r} of layer {layer.name!r} matches no dataset "
                        f"(available: {available})",
                    )
                if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                    raise ValueError(
                        f"dataset {layer.dataset!r}: width must be a positive int, got {width!r}"
                    )
                layer = dataclasses.replace(layer, n=(width,))
            layers.append(layer)
        return dataclasses.replace(self, layers=tuple(layers))


# ---------------------------------------------------------------------------------------------------------
# Entry points


def load_config(path: str | os.PathLike[str]) -> NetworkConfig:
    """Read and parse a `config.json`; every problem is a `ConfigError` naming the file."""
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc}") from exc

    def no_exact_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(source, "", f"key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        obj = json.loads(text, object_pairs_hook=no_exact_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(obj, dict):
        raise ConfigError(source, "", f"expected a JSON object at the top level, got {_describe(obj)}")
    return parse_config(obj, source)


def parse_config(obj: Mapping[str, object], source: str = "config.json") -> NetworkConfig:
    """Turn a decoded `config.json` into a `NetworkConfig`, applying DSSTNE's rules and defaults."""
    return _Parser(source).network(obj)


# ---------------------------------------------------------------------------------------------------------
# The parser

_T = TypeVar("_T")
_Reader = Callable[[object, str], Any]  # Any: each reader checks its value; dataclass fields do the rest
_Fields = dict[str, tuple[str, str, object]]  # canonical key -> (key as written, its path, value)

_NETWORK_FIELDS = {
    "version": "version",
    "name": "name",
    "kind": "kind",
    "weightsdata": "weightsdata",
    "lrn": "lrn",
    "localresponsenormalization": "lrn",
    "maxout": "maxout",
    "sparsenesspenalty": "sparsenesspenalty",
    "denoising": "denoising",
    "deltaboost": "deltaboost",
    "scaledmarginalcrossentropy": "smce",
    "datascaledmarginalcrossentropy": "smce",
    "shuffleindices": "shuffleindices",
    "reluslope": "reluslope",
    "slope": "reluslope",
    "elualpha": "elualpha",
    "selulambda": "selulambda",
    "decay": "decay",
    "errorfunction": "errorfunction",
    "layers": "layers",
}

_ALL: frozenset[LayerKind] = frozenset({"input", "hidden", "output", "target"})
_NON_INPUT: frozenset[LayerKind] = frozenset({"hidden", "output", "target"})
_HIDDEN: frozenset[LayerKind] = frozenset({"hidden"})
_HIDDEN_OUTPUT: frozenset[LayerKind] = frozenset({"hidden", "output"})
_INPUT_OUTPUT: frozenset[LayerKind] = frozenset({"input", "output"})

# Layer keys (lower-cased): canonical name and the layer kinds DSSTNE reads them for; for any other kind
# DSSTNE's parser reports them as unknown.
_LAYER_FIELDS: dict[str, tuple[str, frozenset[LayerKind]]] = {
    "kind": ("kind", _ALL),
    "type": ("type", _ALL),
    "name": ("name", _ALL),
    "n": ("n", _ALL),
    "sparse": ("sparse", _ALL),
    "pdropout": ("pdropout", _ALL),
    "source": ("source", _NON_INPUT),
    "kernel": ("kernel", _NON_INPUT),
    "kernelstride": ("kernelstride", _NON_INPUT),
    "batchnormalization": ("batchnormalization", _HIDDEN),
    "sparsenesspenalty": ("sparsenesspenalty", _HIDDEN),
    "function": ("function", _HIDDEN_OUTPUT),
    "skip": ("skip", _HIDDEN_OUTPUT),
    "activation": ("activation", _HIDDEN_OUTPUT),
    "reluslope": ("reluslope", _HIDDEN_OUTPUT),
    "slope": ("reluslope", _HIDDEN_OUTPUT),
    "elualpha": ("elualpha", _HIDDEN_OUTPUT),
    "selulambda": ("selulambda", _HIDDEN_OUTPUT),
    "weightnorm": ("weightnorm", _HIDDEN_OUTPUT),
    "deltanorm": ("deltanorm", _HIDDEN_OUTPUT),
    "weightinit": ("weightinit", _HIDDEN_OUTPUT),
    "sharedweights": ("sharedweights", _HIDDEN_OUTPUT),
    "dataset": ("dataset", _INPUT_OUTPUT),
}
_LAYER_TABLE = {key: canonical for key, (canonical, _) in _LAYER_FIELDS.items()}
_KIND_ORDER: tuple[LayerKind, ...] = ("input", "hidden", "output", "target")
_KIND_TITLES: dict[LayerKind, str] = {
    "input": "Input",
    "hidden": "Hidden",
    "output": "Output",
    "target": "Target",
}

# Spellings DSSTNE's documentation lists but its parser refuses: say so rather than a bare "unknown".
_FIELD_HINTS: dict[tuple[str, str], str] = {
    ("network", "l1penalty"): "listed in LDL.txt but not accepted by DSSTNE",
    ("layer", "l1penalty"): "listed in LDL.txt but not accepted by DSSTNE",
    ("network", "recurrent"): "listed in LDL.txt but not accepted by DSSTNE",
    ("layer", "recurrent"): "listed in LDL.txt but not accepted by DSSTNE",
    ("layer", "errorfunction"): "the error function is a network-level field",
    ("network", "smce"): "DSSTNE does not accept the abbreviation; write ScaledMarginalCrossEntropy",
}
_VALUE_HINTS: dict[tuple[str, str], str] = {
    ("error function", "smce"): "DSSTNE does not accept the abbreviation; write ScaledMarginalCrossEntropy",
    (
        "error function",
        "dsmce",
    ): "DSSTNE does not accept the abbreviation; write DataScaledMarginalCrossEntropy",
    ("layer kind", "pooling"): 'a pooling layer is written "Type": "Pooling"',
}
_SPELLINGS = {
    "network kind": "FeedForward, AutoEncoder",
    "error function": "L1, L2, L2Hinge, Hinge, CrossEntropy, ScaledMarginalCrossEntropy, "
    "DataScaledMarginalCrossEntropy",
    "layer kind": "Input, Hidden, Output, Target",
    "layer type": "FullyConnected, Convolutional, Pooling",
    "activation": "Sigmoid, Tanh, Linear, Relu, LRelu, Elu, Selu, SoftPlus, SoftSign, SoftMax, ReluMax, "
    "LinearMax",
    "pooling function": "Max, Maxout, DotProduct, Cosine, Average, LRN",
    "weight initialisation scheme": "Xavier, CaffeXavier, Gaussian, Uniform, UnitBall, Constant, SELU",
}


def _describe(value: object) -> str:
    """A JSON value as a type error shows it: `string '0.5'`, `number 3`, `an array`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Parser:
    """Reads one config; holds the source name so that every error names the file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, reason: str) -> ConfigError:
        return ConfigError(self.source, path, reason)

    # -- JSON values -----------------------------------------------------------------------------------

    def fields(self, obj: object, path: str, what: str, table: Mapping[str, str]) -> _Fields:
        """The object's keys, lower-cased and mapped through `table`; unknown or repeated keys fail."""
        if not isinstance(obj, Mapping):
            raise self.fail(path, f"expected an object, got {_describe(obj)}")
        out: _Fields = {}
        for key, value in obj.items():
            key_path = _join(path, key)
            canonical = table.get(key.lower())
            if canonical is None:
                hint = _FIELD_HINTS.get((what, key.lower()))
                raise self.fail(key_path, f"unknown {what} field {key!r}" + (f" ({hint})" if hint else ""))
            if canonical in out:
                raise self.fail(
                    key_path,
                    f"field {key!r} repeats {out[canonical][0]!r} (keys are case-insensitive and aliases "
                    "name the same field)",
                )
            out[canonical] = (key, key_path, value)
        return out

    def number(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {_describe(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(path, f"expected a finite number, got {value!r}")
        return number

    def probability(self, value: object, path: str) -> float:
        number = self.number(value, path)
        if not 0.0 <= number <= 1.0:
            raise self.fail(path, f"expected a number in [0, 1], got {value!r}")
        return number

    def dropout(self, value: object, path: str) -> float:
        """A probability of dropping (pDropout, Denoising p): 1 would drop everything."""
        number = self.number(value, path)
        if not 0.0 <= number < 1.0:
            raise self.fail(path, f"expected a number in [0, 1), got {value!r}")
        return number

    def non_negative(self, value: object, path: str) -> float:
        number = self.number(value, path)
        if number < 0.0:
            raise self.fail(path, f"expected a number >= 0, got {value!r}")
        return number

    def integer(self, value: object, path: str) -> int:
        """A positive int; an integral float such as 128.0 passes, as DSSTNE's `asInt` lets it."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_describe(value)}")
        if value < 1:
            raise self.fail(path, f"expected an integer >= 1, got {value}")
        return value

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_describe(value)}")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_describe(value)}")
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        """A string or an array of strings (Source, Skip)."""
        if isinstance(value, list):
            return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(value))
        return (self.string(value, path),)

    def ints(self, value: object, path: str, most: int) -> tuple[int, ...]:
        """An int or an array of 1..`most` ints (N, Kernel, KernelStride)."""
        if isinstance(value, list):
            if not 1 <= len(value) <= most:
                raise self.fail(path, f"expected 1 to {most} integers, got {len(value)}")
            return tuple(self.integer(item, f"{path}[{i}]") for i, item in enumerate(value))
        return (self.integer(value, path),)

    def enum(self, value: object, path: str, table: Mapping[str, _T], what: str) -> _T:
        """A case-insensitive enum value, mapped to its canonical spelling."""
        text = self.string(value, path)
        found = table.get(text.lower())
        if found is None:
            hint = _VALUE_HINTS.get((what, text.lower())) or f"expected one of: {_SPELLINGS[what]}"
            raise self.fail(path, f"unknown {what} {text!r} ({hint})")
        return found

    def block(self, value: object, path: str, what: str, readers: Mapping[str, _Reader]) -> dict[str, Any]:
        """A nested object such as `{p, beta}`: lower-case key -> its value, read by `readers[key]`."""
        found = self.fields(value, path, what, {key: key for key in readers})
        return {key: readers[key](raw, key_path) for key, (_, key_path, raw) in found.items()}

    # -- the network -----------------------------------------------------------------------------------

    def network(self, obj: object) -> NetworkConfig:
        found = self.fields(obj, "", "network", _NETWORK_FIELDS)
        config = NetworkConfig(layers=())
        for name, (_, path, value) in found.items():
            if name != "layers":  # read last: layers inherit the network's slope, alpha and lambda
                config = dataclasses.replace(config, **self.network_field(name, value, path))
        if "layers" not in found:
            raise self.fail("", "missing required field 'Layers'")
        _, path, value = found["layers"]
        return dataclasses.replace(config, layers=self.layers(value, path, config), source=self.source)

    def network_field(self, name: str, value: object, path: str) -> dict[str, Any]:
        """One top-level key as NetworkConfig keyword arguments; nested objects merge into defaults."""
        simple: dict[str, tuple[str, _Reader]] = {
            "name": ("name", self.string),
            "weightsdata": ("weights_data", self.string),
            "shuffleindices": ("shuffle_indices", self.boolean),
            "reluslope": ("relu_slope", self.number),
            "elualpha": ("elu_alpha", self.number),
            "selulambda": ("selu_lambda", self.number),
            "decay": ("decay", self.non_negative),
            "kind": ("kind", lambda v, p: self.enum(v, p, _KINDS, "network kind")),
            "errorfunction": (
                "error_function",
                lambda v, p: self.enum(v, p, _ERROR_FUNCTIONS, "error function"),
            ),
        }
        if name in simple:
            attr, reader = simple[name]
            return {attr: reader(value, path)}
        if name == "version":
            version = self.number(value, path)
            if version < 0.6999:  # DSSTNE's own threshold for "at least 0.7" in float32
                raise self.fail(path, f"version {value!r} is too old (DSSTNE needs at least 0.7)")
            return {"version": version}
        if name == "sparsenesspenalty":
            return {"sparseness_penalty": self.sparseness_penalty(value, path)}
        if name == "denoising":
            read = self.block(value, path, "Denoising", {"p": self.dropout})
            return {"denoising": dataclasses.replace(DenoisingConfig(), **read)}
        if name == "deltaboost":
            read = self.block(
                value, path, "DeltaBoost", {"one": self.non_negative, "zero": self.non_negative}
            )
            return {"delta_boost": dataclasses.replace(DeltaBoostConfig(), **read)}
        if name == "smce":
            return {"smce": self.smce(value, path)}
        if name == "lrn":
            readers = {"k": self.number, "n": self.integer, "alpha": self.number, "beta": self.number}
            read = self.block(value, path, "LocalResponseNormalization", readers)
            return {"lrn": dataclasses.replace(LrnConfig(), **read)}
        if name == "maxout":
            read = self.block(value, path, "MaxOut", {"k": self.integer})
            return {"maxout_k": read["k"]} if "k" in read else {}
        raise AssertionError(name)  # every key of _NETWORK_FIELDS is handled above

    def sparseness_penalty(self, value: object, path: str) -> SparsenessPenaltyConfig:
        read = self.block(
            value, path, "SparsenessPenalty", {"p": self.probability, "beta": self.non_negative}
        )
        return dataclasses.replace(SparsenessPenaltyConfig(), **read)

    def smce(self, value: object, path: str) -> SmceConfig:
        readers: dict[str, _Reader] = {
            "onetarget": self.probability,
            "zerotarget": self.probability,
            "onescale": self.non_negative,
            "zeroscale": self.non_negative,
        }
        read = self.block(value, path, "ScaledMarginalCrossEntropy", readers)
        attrs = {"onetarget": "one_target", "zerotarget": "zero_target", "onescale": "one_scale"}
        attrs["zeroscale"] = "zero_scale"
        return dataclasses.replace(SmceConfig(), **{attrs[key]: v for key, v in read.items()})

    # -- the layers ------------------------------------------------------------------------------------

    def layers(self, value: object, path: str, net: NetworkConfig) -> tuple[LayerConfig, ...]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array of layers, got {_describe(value)}")
        layers: list[LayerConfig] = []
        seen: dict[str, str] = {}
        for i, raw in enumerate(value):
            at = f"{path}[{i}]"
            layer = self.layer(raw, at, i, len(value), layers, net)
            if layer.name in seen:
                raise self.fail(at, f"duplicate layer name {layer.name!r} (also {seen[layer.name]})")
            seen[layer.name] = at
            layers.append(layer)
        self.check_graph(layers, path)
        return tuple(layers)

    def layer(
        self, raw: object, path: str, i: int, count: int, previous: list[LayerConfig], net: NetworkConfig
    ) -> LayerConfig:
        found = self.fields(raw, path, "layer", _LAYER_TABLE)
        # Kind and Type first: they decide which other keys the layer may have (DSSTNE pre-scans them too).
        kind: LayerKind = "input" if i == 0 else "output" if i == count - 1 else "hidden"
        if "kind" in found:
            _, at, value = found["kind"]
            kind = self.enum(value, at, _LAYER_KINDS, "layer kind")
        layer_type: LayerType = "fullyconnected"
        if "type" in found:
            _, at, value = found["type"]
            layer_type = self.enum(value, at, _LAYER_TYPES, "layer type")

        layer = LayerConfig(
            name=f"{_KIND_TITLES[kind]}{i}",
            kind=kind,
            type=layer_type,
            relu_slope=net.relu_slope,
            elu_alpha=net.elu_alpha,
            selu_lambda=net.selu_lambda,
        )
        for name, (key, at, value) in found.items():
            kinds = _LAYER_FIELDS[key.lower()][1]
            if kind not in kinds:
                allowed = ", ".join(_KIND_TITLES[k] for k in _KIND_ORDER if k in kinds)
                raise self.fail(
                    at, f"field {key!r} does not apply to {_KIND_TITLES[kind]} layers (only {allowed})"
                )
            if name == "function" and layer_type != "pooling":
                raise self.fail(at, f"field {key!r} applies only to Pooling layers")
            if name not in ("kind", "type"):
                layer = dataclasses.replace(layer, **self.layer_field(name, value, at, kind))

        if layer.n is None and layer_type == "fullyconnected":
            raise self.fail(path, "missing required field 'N' (a FullyConnected layer needs its size)")
        if layer.n == "auto" and layer.dataset is None:
            raise self.fail(found["n"][1], 'N "auto" needs a DataSet to take the width from')
        if kind != "input" and "source" not in found:
            if not previous:
                raise self.fail(
                    path, f"a {_KIND_TITLES[kind]} layer needs a Source (there is no previous layer)"
                )
            layer = dataclasses.replace(layer, sources=(previous[-1].name,))
        return layer

    def layer_field(self, name: str, value: object, path: str, kind: LayerKind) -> dict[str, Any]:
        """One layer key (its applicability already checked) as LayerConfig keyword arguments."""
        simple: dict[str, tuple[str, _Reader]] = {
            "name": ("name", self.string),
            "sparse": ("sparse", self.boolean),
            "pdropout": ("p_dropout", self.dropout),
            "dataset": ("dataset", self.string),
            "source": ("sources", self.strings),
            "skip": ("skips", self.strings),
            "reluslope": ("relu_slope", self.number),
            "elualpha": ("elu_alpha", self.number),
            "selulambda": ("selu_lambda", self.number),
            "weightnorm": ("weight_norm", self.non_negative),
            "deltanorm": ("delta_norm", self.non_negative),
            "batchnormalization": ("batch_normalization", self.boolean),
            "kernel": ("kernel", lambda v, p: self.ints(v, p, 3)),
            "kernelstride": ("kernel_stride", lambda v, p: self.ints(v, p, 3)),
            "activation": ("activation", lambda v, p: self.enum(v, p, _ACTIVATIONS, "activation")),
            "function": ("pooling_function", lambda v, p: self.enum(v, p, _POOLING, "pooling function")),
            "weightinit": ("weight_init", self.weight_init),
            "sparsenesspenalty": ("sparseness_penalty", self.sparseness_penalty),
            "sharedweights": ("shared_weights", self.shared_weights),
        }
        if name == "n":
            return {"n": self.layer_size(value, path, kind)}
        attr, reader = simple[name]
        return {attr: reader(value, path)}

    def layer_size(self, value: object, path: str, kind: LayerKind) -> tuple[int, ...] | Literal["auto"]:
        if isinstance(value, str):
            if value.lower() != "auto":
                raise self.fail(
                    path, f'expected an integer, an array of up to 4 integers or "auto", got {value!r}'
                )
            if kind not in ("input", "output"):
                raise self.fail(
                    path, f'N "auto" is only for Input and Output layers, not {_KIND_TITLES[kind]}'
                )
            return "auto"
        return self.ints(value, path, 4)

    def weight_init(self, value: object, path: str) -> WeightInitConfig:
        readers: dict[str, _Reader] = {
            "scheme": lambda v, p: self.enum(v, p, _SCHEMES, "weight initialisation scheme"),
            "scale": self.number,
            "bias": self.number,
        }
        return dataclasses.replace(WeightInitConfig(), **self.block(value, path, "WeightInit", readers))

    def shared_weights(self, value: object, path: str) -> tuple[SharedWeightConfig, ...]:
        """One `{InputLayer, SourceInputLayer, SourceOutputLayer, Transposed}` object or an array of them."""
        if not isinstance(value, list):
            return (self.shared_weight(value, path),)
        return tuple(self.shared_weight(item, f"{path}[{j}]") for j, item in enumerate(value))

    def shared_weight(self, value: object, path: str) -> SharedWeightConfig:
        readers: dict[str, _Reader] = {
            "inputlayer": self.string,
            "sourceinputlayer": self.string,
            "sourceoutputlayer": self.string,
            "transposed": self.boolean,
        }
        read = self.block(value, path, "SharedWeights", readers)
        for key, spelled in (
            ("inputlayer", "InputLayer"),
            ("sourceinputlayer", "SourceInputLayer"),
            ("sourceoutputlayer", "SourceOutputLayer"),
        ):
            if key not in read:
                raise self.fail(path, f"missing required field {spelled!r}")
        return SharedWeightConfig(
            input_layer=str(read["inputlayer"]),
            source_input_layer=str(read["sourceinputlayer"]),
            source_output_layer=str(read["sourceoutputlayer"]),
            transposed=bool(read.get("transposed", False)),
        )

    def check_graph(self, layers: list[LayerConfig], path: str) -> None:
        """Every layer named exists; the network has an Input and an Output; tied weights are wired."""
        names = {layer.name for layer in layers}
        for i, layer in enumerate(layers):
            at = f"{path}[{i}]"
            for what, refs in (("Source", layer.sources), ("Skip", layer.skips)):
                for ref in refs:
                    if ref not in names:
                        raise self.fail(f"{at}.{what}", f"no layer is named {ref!r}")
                    if ref == layer.name:
                        raise self.fail(f"{at}.{what}", f"layer {ref!r} cannot feed itself")
            for shared in layer.shared_weights:
                if shared.input_layer not in layer.sources:
                    reason = f"InputLayer {shared.input_layer!r} is not a Source of layer {layer.name!r}"
                    raise self.fail(f"{at}.SharedWeights", reason)
                for ref in (shared.source_input_layer, shared.source_output_layer):
                    if ref not in names:
                        raise self.fail(f"{at}.SharedWeights", f"no layer is named {ref!r}")
            if layer.pooling_function in ("dotproduct", "cosine") and len(layer.sources) < 2:
                raise self.fail(at, f"a {layer.pooling_function} pooling layer needs 2 or more sources")
        kinds = {layer.kind for layer in layers}
        if "input" not in kinds or "output" not in kinds:
            raise self.fail(path, "a network needs at least one Input and one Output layer")
