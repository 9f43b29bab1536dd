"""config.json parsing: DSSTNE's rules (dsstne.md §4), its defaults, aliases, refusals and clear errors.

`data/movielens-config.json` is DSSTNE's MovieLens sample network (Apache 2.0, amazon-dsstne
samples/movielens/config.json); the unknown-key variant adds `"Bogus": 3` to the hidden layer.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.dsstne.config import (
    ConfigError,
    DeltaBoostConfig,
    DenoisingConfig,
    LayerConfig,
    LrnConfig,
    NetworkConfig,
    SmceConfig,
    SparsenessPenaltyConfig,
    WeightInitConfig,
    load_config,
    parse_config,
)

DATA = Path(__file__).parent / "data"
MOVIELENS = DATA / "movielens-config.json"


def movielens() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(MOVIELENS.read_text())
    return loaded


def net(*layers: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A config with the given top-level keys; three small layers unless given."""
    if not layers:
        layers = ({"N": 8}, {"N": 4}, {"N": 8})
    return {**top, "Layers": list(layers)}


def error_of(obj: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(obj)
    return info.value


# --- the reference configs ------------------------------------------------------------------------------


def test_movielens_config_parses_with_its_values() -> None:
    config = load_config(MOVIELENS)
    assert config.version == 0.7
    assert config.name == "AE"
    assert config.kind == "feedforward"
    assert config.sparseness_penalty == SparsenessPenaltyConfig(p=0.5, beta=2.0)
    assert config.shuffle_indices is False
    assert config.denoising == DenoisingConfig(p=0.2)
    assert config.smce == SmceConfig(one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0)
    assert config.error_function == "smce"
    assert config.source == str(MOVIELENS)

    inp, hidden, out = config.layers
    assert (inp.name, inp.kind, inp.n, inp.dataset, inp.sparse, inp.sources) == (
        "Input",
        "input",
        "auto",
        "gl_input",
        True,
        (),
    )
    assert (hidden.name, hidden.kind, hidden.type, hidden.n, hidden.activation, hidden.sparse) == (
        "Hidden",
        "hidden",
        "fullyconnected",
        (128,),
        "sigmoid",
        True,
    )
    assert hidden.sources == ("Input",)
    assert (out.name, out.kind, out.n, out.dataset, out.activation, out.sources) == (
        "Output",
        "output",
        "auto",
        "gl_output",
        "sigmoid",
        ("Hidden",),
    )
    assert hidden.weight_init == out.weight_init == WeightInitConfig("xavier", 1.0, 0.0)
    assert config.sparseness_penalty_for(hidden) == SparsenessPenaltyConfig(p=0.5, beta=2.0)
    assert config.sparseness_penalty_for(out) is None


def test_unknown_key_variant_fails_naming_file_path_and_key() -> None:
    path = DATA / "movielens-config-unknown-key.json"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: Layers[1].Bogus: unknown layer field 'Bogus'"
    assert (info.value.path, info.value.source) == ("Layers[1].Bogus", str(path))
    assert isinstance(info.value, ValueError)


def test_error_message_format_of_the_brief() -> None:
    obj = net({"N": 8}, {"N": 4, "Activaton": "Sigmoid"}, {"N": 8})
    assert str(error_of(obj)) == "config.json: Layers[1].Activaton: unknown layer field 'Activaton'"
    with pytest.raises(ConfigError, match=r"^my\.json: Layers\[1\]\.Activaton: "):
        parse_config(obj, source="my.json")


# --- load_config's own errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"Layers": [', "invalid JSON at line 1"),
        ("[1, 2]", "expected a JSON object at the top level, got an array"),
        ('{"Name": "a", "Name": "b", "Layers": []}', "key 'Name' appears twice"),
        ('{"Decay": NaN, "Layers": [{"N": 1}, {"N": 1}]}', "Decay: expected a finite number, got nan"),
    ],
)
def test_load_config_rejects_bad_files(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        load_config(path)


def test_load_config_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.json")


def test_load_config_accepts_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + MOVIELENS.read_bytes())
    assert load_config(path) == load_config(MOVIELENS)


# --- case-insensitivity ---------------------------------------------------------------------------------


def test_keys_and_enum_values_are_case_insensitive() -> None:
    shouting = {
        "VERSION": 0.8,
        "kInD": "AUTOENCODER",
        "errorFUNCTION": "scaledMARGINALcrossENTROPY",
        "SPARSENESSPENALTY": {"P": 0.3, "BETA": 1.5},
        "scaledmarginalcrossentropy": {"ONETARGET": 0.8, "zeroTARGET": 0.2, "OneScale": 2, "ZEROSCALE": 3},
        "layers": [
            {"NAME": "in", "KIND": "INPUT", "n": "AUTO", "DATASET": "x", "SPARSE": True},
            {"name": "h", "kind": "hidden", "TYPE": "FULLYCONNECTED", "n": 16, "ACTIVATION": "RELU"},
            {
                "Name": "out",
                "n": "Auto",
                "dataset": "x",
                "ACTIVATION": "SigMoid",
                "WEIGHTINIT": {"SCHEME": "GAUSSIAN"},
            },
        ],
    }
    config = parse_config(shouting)
    assert (config.version, config.kind, config.error_function) == (0.8, "autoencoder", "smce")
    assert config.sparseness_penalty == SparsenessPenaltyConfig(0.3, 1.5)
    assert config.smce == SmceConfig(0.8, 0.2, 2.0, 3.0)
    assert [layer.name for layer in config.layers] == ["in", "h", "out"]
    assert [layer.activation for layer in config.layers[1:]] == ["relu", "sigmoid"]
    assert config.layers[0].n == config.layers[2].n == "auto"
    assert config.layers[2].weight_init.scheme == "gaussian"


def _recase(draw: st.DrawFn, value: Any, enum_keys: frozenset[str]) -> Any:
    """The same JSON with every key (and every enum string value) in a random mix of cases."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new_key = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in key)
            if key.lower() in enum_keys and isinstance(item, str):
                item = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in item)
            out[new_key] = _recase(draw, item, enum_keys)
        return out
    if isinstance(value, list):
        return [_recase(draw, item, enum_keys) for item in value]
    return value


@st.composite
def recased_movielens(draw: st.DrawFn) -> dict[str, Any]:
    enums = frozenset({"kind", "type", "activation", "errorfunction", "n"})
    recased: dict[str, Any] = _recase(draw, movielens(), enums)
    return recased


@settings(max_examples=40, deadline=None)
@given(recased_movielens())
def test_any_casing_of_the_movielens_config_parses_the_same(obj: dict[str, Any]) -> None:
    assert parse_config(obj) == parse_config(movielens())


# --- defaults -------------------------------------------------------------------------------------------


def test_network_defaults_are_dsstnes() -> None:
    config = parse_config(net())
    assert config.version == 0.9
    assert config.name == ""
    assert config.kind == "feedforward"
    assert config.shuffle_indices is True
    assert config.error_function == "crossentropy"
    assert config.sparseness_penalty == SparsenessPenaltyConfig(p=0.0, beta=0.0)
    assert not config.sparseness_penalty.enabled
    assert config.denoising == DenoisingConfig(p=0.0)
    assert not config.denoising.enabled
    assert config.delta_boost == DeltaBoostConfig(one=1.0, zero=1.0)
    assert config.smce == SmceConfig(one_target=0.9, zero_target=0.1, one_scale=1.0, zero_scale=1.0)
    assert config.lrn == LrnConfig(k=2.0, n=5, alpha=1e-4, beta=0.75)
    assert config.maxout_k == 2
    assert (config.relu_slope, config.elu_alpha, config.selu_lambda) == (1.0, 1.0, 1.050701)
    assert config.decay == 0.0
    assert config.weights_data is None


def test_layer_defaults_by_position() -> None:
    config = parse_config(net({"N": 8}, {"N": 4}, {"N": 4}, {"N": 8}))
    assert [layer.kind for layer in config.layers] == ["input", "hidden", "hidden", "output"]
    assert [layer.name for layer in config.layers] == ["Input0", "Hidden1", "Hidden2", "Output3"]
    assert [layer.sources for layer in config.layers] == [(), ("Input0",), ("Hidden1",), ("Hidden2",)]
    for layer in config.layers:
        assert layer.type == "fullyconnected"
        assert layer.activation == "sigmoid"
        assert layer.sparse is False
        assert layer.p_dropout == 0.0
        assert layer.dataset is None
        assert layer.skips == ()
        assert layer.weight_init == WeightInitConfig(scheme="xavier", scale=1.0, bias=0.0)
        assert layer.sparseness_penalty == SparsenessPenaltyConfig()
        assert (layer.weight_norm, layer.delta_norm, layer.batch_normalization) == (0.0, 0.0, False)
        assert (layer.relu_slope, layer.elu_alpha, layer.selu_lambda) == (1.0, 1.0, 1.050701)


def test_default_name_follows_the_given_kind() -> None:
    config = parse_config(net({"N": 8}, {"N": 4, "Kind": "Target"}, {"N": 8, "Kind": "Output"}))
    assert [layer.name for layer in config.layers] == ["Input0", "Target1", "Output2"]


def test_nested_objects_merge_into_their_defaults() -> None:
    config = parse_config(
        net(ScaledMarginalCrossEntropy={"oneTarget": 1.0}, DeltaBoost={"zero": 0.5}, LRN={"n": 3}, MaxOut={})
    )
    assert config.smce == SmceConfig(one_target=1.0, zero_target=0.1, one_scale=1.0, zero_scale=1.0)
    assert config.delta_boost == DeltaBoostConfig(one=1.0, zero=0.5)
    assert config.lrn == LrnConfig(n=3)
    assert config.maxout_k == 2


def test_layers_inherit_network_slopes_unless_they_set_their_own() -> None:
    config = parse_config(
        net({"N": 8}, {"N": 4, "Slope": 0.1, "ELUAlpha": 2}, {"N": 8}, RELUSlope=0.3, SELULambda=1.5)
    )
    hidden, out = config.layers[1:]
    assert (hidden.relu_slope, hidden.elu_alpha, hidden.selu_lambda) == (0.1, 2.0, 1.5)
    assert (out.relu_slope, out.elu_alpha, out.selu_lambda) == (0.3, 1.0, 1.5)


def test_every_documented_field_is_read() -> None:
    obj = net(
        {"Name": "in", "N": [2, 3, 4, 5], "Sparse": True, "pDropout": 0.1, "DataSet": "a"},
        {
            "Name": "h",
            "N": 4,
            "Source": ["in"],
            "Activation": "Tanh",
            "WeightNorm": 2.0,
            "DeltaNorm": 3.0,
            "BatchNormalization": True,
            "SparsenessPenalty": {"p": 0.2},
            "WeightInit": {"Scheme": "Gaussian", "Scale": 0.01, "Bias": -10.2},
        },
        {"Name": "out", "N": 4, "Source": "h", "Skip": "h", "DataSet": "b"},
        Version=0.8,
        Name="net",
        Kind="AutoEncoder",
        ShuffleIndices=False,
        DeltaBoost={"one": 2.0, "zero": 0.5},
        Decay=0.01,
        WeightsData="w.nc",
        ErrorFunction="L2",
        MaxOut={"k": 3},
        ELUAlpha=0.5,
    )
    config = parse_config(obj)
    inp, hidden, out = config.layers
    assert (inp.n, inp.size, inp.sparse, inp.p_dropout, inp.dataset) == ((2, 3, 4, 5), 120, True, 0.1, "a")
    assert (hidden.activation, hidden.weight_norm, hidden.delta_norm, hidden.batch_normalization) == (
        "tanh",
        2.0,
        3.0,
        True,
    )
    assert hidden.sparseness_penalty == SparsenessPenaltyConfig(p=0.2, beta=0.0)
    assert hidden.weight_init == WeightInitConfig("gaussian", 0.01, -10.2)
    assert (out.sources, out.skips, out.dataset) == (("h",), ("h",), "b")
    assert (config.version, config.name, config.kind, config.shuffle_indices) == (
        0.8,
        "net",
        "autoencoder",
        False,
    )
    assert (config.delta_boost, config.decay, config.weights_data) == (
        DeltaBoostConfig(2.0, 0.5),
        0.01,
        "w.nc",
    )
    assert (config.error_function, config.maxout_k, config.elu_alpha) == ("l2", 3, 0.5)


# --- enum values and aliases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("L1", "l1"),
        ("L2", "l2"),
        ("L2Hinge", "l2hinge"),
        ("Hinge", "hinge"),
        ("CrossEntropy", "crossentropy"),
        ("Cross Entropy", "crossentropy"),
        ("ScaledMarginalCrossEntropy", "smce"),
        ("DataScaledMarginalCrossEntropy", "dsmce"),
    ],
)
def test_error_functions(spelling: str, canonical: str) -> None:
    assert parse_config(net(ErrorFunction=spelling)).error_function == canonical


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Sigmoid", "sigmoid"),
        ("Tanh", "tanh"),
        ("Linear", "linear"),
        ("Relu", "relu"),
        ("RectifiedLinear", "relu"),
        ("LRelu", "lrelu"),
        ("LeakyRectifiedLinear", "lrelu"),
        ("Elu", "elu"),
        ("ExponentialLinear", "elu"),
        ("Selu", "selu"),
        ("ScaledExponentialLinear", "selu"),
        ("SoftMax", "softmax"),
        ("SoftPlus", "softplus"),
        ("SoftSign", "softsign"),
        ("ReluMax", "relumax"),
        ("LinearMax", "linearmax"),
    ],
)
def test_activations(spelling: str, canonical: str) -> None:
    layer = parse_config(net({"N": 8}, {"N": 4, "Activation": spelling}, {"N": 8})).layers[1]
    assert layer.activation == canonical


@pytest.mark.parametrize(
    ("activation", "effective"),
    [("softplus", "linear"), ("softsign", "linear"), ("relumax", "linear"), ("linearmax", "linear")]
    + [(a, a) for a in ("sigmoid", "tanh", "relu", "lrelu", "elu", "selu", "softmax", "linear")],
)
def test_unimplemented_activations_behave_as_identity(activation: str, effective: str) -> None:
    layer = parse_config(net({"N": 8}, {"N": 4, "Activation": activation}, {"N": 8})).layers[1]
    assert layer.effective_activation == effective


@pytest.mark.parametrize(
    "scheme", ["Xavier", "CaffeXavier", "Gaussian", "Uniform", "UnitBall", "Constant", "SELU"]
)
def test_weight_init_schemes(scheme: str) -> None:
    layer = parse_config(net({"N": 8}, {"N": 4, "WeightInit": {"Scheme": scheme}}, {"N": 8})).layers[1]
    assert layer.weight_init.scheme == scheme.lower()


def test_block_and_key_aliases() -> None:
    config = parse_config(
        net(DataScaledMarginalCrossEntropy={"oneScale": 2.0}, LocalResponseNormalization={"k": 3}, Slope=0.2)
    )
    assert config.smce.one_scale == 2.0
    assert config.lrn.k == 3.0
    assert config.relu_slope == 0.2
    assert parse_config(net(LRN={"alpha": 0.5})).lrn.alpha == 0.5
    assert parse_config(net(RELUSlope=0.4)).relu_slope == 0.4
    layer = parse_config(net({"N": 8}, {"N": 4, "RELUSlope": 0.7}, {"N": 8})).layers[1]
    assert layer.relu_slope == 0.7


@pytest.mark.parametrize(
    "top",
    [
        {"ScaledMarginalCrossEntropy": {}, "DataScaledMarginalCrossEntropy": {}},
        {"RELUSlope": 1, "Slope": 2},
        {"LRN": {}, "LocalResponseNormalization": {}},
        {"Decay": 0.1, "decay": 0.2},
    ],
)
def test_a_field_given_twice_through_aliases_or_case_is_an_error(top: dict[str, Any]) -> None:
    assert "repeats" in error_of(net(**top)).reason


# --- what DSSTNE does not accept ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        (net(L1Penalty=0.1), "L1Penalty", "unknown network field 'L1Penalty' (listed in LDL.txt"),
        (net(Recurrent=True), "Recurrent", "unknown network field 'Recurrent'"),
        (net(SMCE={"oneTarget": 1}), "SMCE", "unknown network field 'SMCE'"),
        (net(ErrorFunction="SMCE"), "ErrorFunction", "unknown error function 'SMCE' (DSSTNE does not accept"),
        (net(ErrorFunction="MSE"), "ErrorFunction", "unknown error function 'MSE' (expected one of: L1, L2"),
        (
            net({"N": 8}, {"N": 4, "ErrorFunction": "L2"}, {"N": 8}),
            "Layers[1].ErrorFunction",
            "unknown layer field 'ErrorFunction' (the error function is a network-level field)",
        ),
        (
            net({"N": 8}, {"N": 4, "Kind": "Pooling"}, {"N": 8}),
            "Layers[1].Kind",
            'unknown layer kind \'Pooling\' (a pooling layer is written "Type": "Pooling")',
        ),
        (
            net({"N": 8}, {"N": 4, "WeightInit": {"Bias": "-10.2"}}, {"N": 8}),
            "Layers[1].WeightInit.Bias",
            "expected a number, got string '-10.2'",
        ),
        (
            net({"N": 8}, {"N": 4, "Activation": "Swish"}, {"N": 8}),
            "Layers[1].Activation",
            "unknown activation",
        ),
        (net(Kind="Recurrent"), "Kind", "unknown network kind 'Recurrent'"),
        (net({"N": 8}, {"N": 4, "Type": "Dense"}, {"N": 8}), "Layers[1].Type", "unknown layer type 'Dense'"),
        (
            net({"N": 8}, {"N": 4, "WeightInit": {"Scheme": "He"}}, {"N": 8}),
            "Layers[1].WeightInit.Scheme",
            "unknown weight initialisation scheme 'He'",
        ),
        (
            net({"N": 8}, {"N": 4, "WeightInit": {"Sheme": "Xavier"}}, {"N": 8}),
            "Layers[1].WeightInit.Sheme",
            "unknown WeightInit field 'Sheme'",
        ),
        (
            net(SparsenessPenalty={"rho": 0.1}),
            "SparsenessPenalty.rho",
            "unknown SparsenessPenalty field 'rho'",
        ),
        (net(Denoising={"q": 0.1}), "Denoising.q", "unknown Denoising field 'q'"),
        (net(DeltaBoost={"two": 1}), "DeltaBoost.two", "unknown DeltaBoost field 'two'"),
        (
            net(ScaledMarginalCrossEntropy={"margin": 1}),
            "ScaledMarginalCrossEntropy.margin",
            "unknown ScaledMarginalCrossEntropy field 'margin'",
        ),
        (net(LRN={"m": 1}), "LRN.m", "unknown LocalResponseNormalization field 'm'"),
        (net(MaxOut={"j": 1}), "MaxOut.j", "unknown MaxOut field 'j'"),
    ],
)
def test_refusals_name_the_key(obj: dict[str, Any], path: str, reason: str) -> None:
    error = error_of(obj)
    assert error.path == path
    assert error.reason.startswith(reason)
    assert str(error).startswith(f"config.json: {path}: ")


@pytest.mark.parametrize(
    ("layer", "key", "kind"),
    [
        ({"N": 8, "Activation": "Relu"}, "Activation", "Input"),
        ({"N": 8, "Source": "x"}, "Source", "Input"),
        ({"N": 8, "WeightInit": {}}, "WeightInit", "Input"),
        ({"N": 8, "SparsenessPenalty": {}}, "SparsenessPenalty", "Input"),
    ],
)
def test_input_only_fields_are_checked_by_kind(layer: dict[str, Any], key: str, kind: str) -> None:
    error = error_of(net(layer, {"N": 4}, {"N": 8}))
    assert error.path == f"Layers[0].{key}"
    assert f"does not apply to {kind} layers" in error.reason


@pytest.mark.parametrize(
    ("layer", "key", "kind"),
    [
        ({"N": 4, "DataSet": "x"}, "DataSet", "Hidden"),
        ({"N": 4, "Kind": "Output", "BatchNormalization": True}, "BatchNormalization", "Output"),
        ({"N": 4, "Kind": "Output", "SparsenessPenalty": {}}, "SparsenessPenalty", "Output"),
        ({"N": 4, "Kind": "Target", "Activation": "Relu"}, "Activation", "Target"),
    ],
)
def test_layer_fields_apply_only_to_some_kinds(layer: dict[str, Any], key: str, kind: str) -> None:
    error = error_of(net({"N": 8}, layer, {"N": 8}))
    assert error.path == f"Layers[1].{key}"
    assert f"does not apply to {kind} layers" in error.reason


def test_pooling_function_only_on_pooling_layers() -> None:
    error = error_of(net({"N": 8}, {"N": 4, "Function": "Max"}, {"N": 8}))
    assert (error.path, error.reason) == (
        "Layers[1].Function",
        "field 'Function' applies only to Pooling layers",
    )
    config = parse_config(
        net({"N": 8}, {"Type": "Pooling", "Function": "LocalResponseNormalization"}, {"N": 8})
    )
    assert (config.layers[1].type, config.layers[1].pooling_function, config.layers[1].n) == (
        "pooling",
        "lrn",
        None,
    )
    error = error_of(net({"N": 8}, {"Type": "Pooling", "Function": "DotProduct"}, {"N": 8}))
    assert "needs 2 or more sources" in error.reason


# --- types and ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        (net(Denoising={"p": "0.5"}), "Denoising.p", "expected a number, got string '0.5'"),
        (net(Version="0.8"), "Version", "expected a number, got string '0.8'"),
        (net(Decay=True), "Decay", "expected a number, got boolean true"),
        (net(Decay=10**400), "Decay", "expected a finite number"),
        (net(ShuffleIndices="false"), "ShuffleIndices", "expected true or false, got string 'false'"),
        (net(ShuffleIndices=0), "ShuffleIndices", "expected true or false, got number 0"),
        (net(Name=3), "Name", "expected a string, got number 3"),
        (net(ErrorFunction=None), "ErrorFunction", "expected a string, got null"),
        (net(Denoising=0.2), "Denoising", "expected an object, got number 0.2"),
        (net(SparsenessPenalty=[0.5, 2]), "SparsenessPenalty", "expected an object, got an array"),
        (net(MaxOut={"k": 2.5}), "MaxOut.k", "expected an integer, got number 2.5"),
        ({"Layers": {"N": 3}}, "Layers", "expected an array of layers, got an object"),
        ({"Layers": [{"N": 8}, 5, {"N": 8}]}, "Layers[1]", "expected an object, got number 5"),
        (
            net({"N": 8}, {"N": "8"}, {"N": 8}),
            "Layers[1].N",
            'expected an integer, an array of up to 4 integers or "auto"',
        ),
        (net({"N": 8}, {"N": 4.5}, {"N": 8}), "Layers[1].N", "expected an integer, got number 4.5"),
        (net({"N": 8}, {"N": 0}, {"N": 8}), "Layers[1].N", "expected an integer >= 1, got 0"),
        (net({"N": 8}, {"N": [1, 2, 3, 4, 5]}, {"N": 8}), "Layers[1].N", "expected 1 to 4 integers, got 5"),
        (net({"N": 8}, {"N": [4, "2"]}, {"N": 8}), "Layers[1].N[1]", "expected an integer, got string '2'"),
        (net({"N": 8}, {"N": 4, "Sparse": "yes"}, {"N": 8}), "Layers[1].Sparse", "expected true or false"),
        (
            net({"N": 8}, {"N": 4, "Source": 1}, {"N": 8}),
            "Layers[1].Source",
            "expected a string, got number 1",
        ),
        (
            net({"N": 8}, {"N": 4, "Source": ["Input0", 2]}, {"N": 8}),
            "Layers[1].Source[1]",
            "expected a string",
        ),
        (net({"N": 8}, {"N": 4, "Name": None}, {"N": 8}), "Layers[1].Name", "expected a string, got null"),
    ],
)
def test_wrong_types_are_named(obj: dict[str, Any], path: str, reason: str) -> None:
    error = error_of(obj)
    assert error.path == path
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        (net(Version=0.6), "Version", "version 0.6 is too old (DSSTNE needs at least 0.7)"),
        (net(Denoising={"p": 1.0}), "Denoising.p", "expected a number in [0, 1), got 1.0"),
        (net(SparsenessPenalty={"p": 1.5}), "SparsenessPenalty.p", "expected a number in [0, 1], got 1.5"),
        (net(SparsenessPenalty={"beta": -1}), "SparsenessPenalty.beta", "expected a number >= 0, got -1"),
        (
            net(ScaledMarginalCrossEntropy={"zeroTarget": -0.1}),
            "ScaledMarginalCrossEntropy.zeroTarget",
            "[0, 1]",
        ),
        (net(ScaledMarginalCrossEntropy={"oneScale": -1}), "ScaledMarginalCrossEntropy.oneScale", ">= 0"),
        (net(DeltaBoost={"one": -2}), "DeltaBoost.one", "expected a number >= 0, got -2"),
        (net(Decay=-0.5), "Decay", "expected a number >= 0, got -0.5"),
        (
            net({"N": 8}, {"N": 4, "pDropout": 1}, {"N": 8}),
            "Layers[1].pDropout",
            "expected a number in [0, 1)",
        ),
        (
            net({"N": 8}, {"N": 4, "WeightNorm": -1}, {"N": 8}),
            "Layers[1].WeightNorm",
            "expected a number >= 0",
        ),
        (
            net({"N": 8}, {"N": 4, "Kernel": [1, 2, 3, 4]}, {"N": 8}),
            "Layers[1].Kernel",
            "expected 1 to 3 integers",
        ),
    ],
)
def test_out_of_range_values_are_refused(obj: dict[str, Any], path: str, reason: str) -> None:
    error = error_of(obj)
    assert error.path == path
    assert reason in error.reason


def test_version_bounds_and_integral_floats() -> None:
    assert parse_config(net(Version=0.7)).version == 0.7
    assert parse_config(net(Version=0.6999)).version == 0.6999
    assert parse_config(net({"N": 8.0}, {"N": 4}, {"N": 8})).layers[0].n == (8,)


# --- layers: names, sizes, sources ----------------------------------------------------------------------


def test_duplicate_layer_names_are_an_error() -> None:
    error = error_of(net({"N": 8, "Name": "a"}, {"N": 4, "Name": "a"}, {"N": 8}))
    assert (error.path, error.reason) == ("Layers[1]", "duplicate layer name 'a' (also Layers[0])")
    # A name that collides with a later layer's default name is a duplicate too.
    error = error_of(net({"N": 8, "Name": "Output2"}, {"N": 4}, {"N": 8}))
    assert error.reason == "duplicate layer name 'Output2' (also Layers[0])"


def test_layer_names_are_case_sensitive() -> None:
    config = parse_config(net({"N": 8, "Name": "a"}, {"N": 4, "Name": "A"}, {"N": 8}))
    assert [layer.name for layer in config.layers[:2]] == ["a", "A"]


def test_missing_or_misused_n() -> None:
    assert error_of(net({"N": 8}, {}, {"N": 8})).reason.startswith("missing required field 'N'")
    error = error_of(net({"N": 8}, {"N": "auto", "Kind": "Hidden"}, {"N": 8}))
    assert (error.path, error.reason) == (
        "Layers[1].N",
        'N "auto" is only for Input and Output layers, not Hidden',
    )
    error = error_of(net({"N": "auto"}, {"N": 4}, {"N": 8}))
    assert (error.path, error.reason) == ("Layers[0].N", 'N "auto" needs a DataSet to take the width from')


def test_sources_skips_and_their_checks() -> None:
    config = parse_config(
        net(
            {"N": 8, "Name": "a"},
            {"N": 8, "Name": "b"},
            {"N": 4, "Name": "h", "Kind": "Hidden", "Source": ["a", "b"]},
            {"N": 8, "Name": "o", "Skip": ["a"]},
        )
    )
    assert [layer.kind for layer in config.layers] == ["input", "hidden", "hidden", "output"]
    assert config.layer("h").sources == ("a", "b")
    assert (config.layer("o").sources, config.layer("o").skips) == (("h",), ("a",))
    assert [layer.name for layer in config.layers_of_kind("hidden")] == ["b", "h"]
    error = error_of(net({"N": 8}, {"N": 4, "Source": "nope"}, {"N": 8}))
    assert (error.path, error.reason) == ("Layers[1].Source", "no layer is named 'nope'")
    error = error_of(net({"N": 8}, {"N": 4, "Name": "h", "Skip": "h"}, {"N": 8}))
    assert (error.path, error.reason) == ("Layers[1].Skip", "layer 'h' cannot feed itself")
    error = error_of(net({"N": 8, "Kind": "Hidden"}, {"N": 4, "Kind": "Input"}, {"N": 8}))
    assert error.reason == "a Hidden layer needs a Source (there is no previous layer)"
    with pytest.raises(KeyError):
        config.layer("zz")


def test_a_network_needs_input_and_output_layers() -> None:
    assert error_of({"Layers": []}).reason == "a network needs at least one Input and one Output layer"
    assert "at least one Input" in error_of(net({"N": 4}, {"N": 4, "Kind": "Hidden"})).reason
    assert error_of({"Name": "x"}).reason == "missing required field 'Layers'"


def test_shared_weights() -> None:
    layers = (
        {"N": 8, "Name": "in"},
        {"N": 4, "Name": "h"},
        {
            "N": 8,
            "Name": "out",
            "SharedWeights": {
                "InputLayer": "h",
                "SourceInputLayer": "in",
                "SourceOutputLayer": "h",
                "Transposed": True,
            },
        },
    )
    shared = parse_config(net(*layers)).layer("out").shared_weights
    assert len(shared) == 1
    assert (shared[0].input_layer, shared[0].source_input_layer, shared[0].source_output_layer) == (
        "h",
        "in",
        "h",
    )
    assert shared[0].transposed is True
    wrong = copy.deepcopy(layers)
    wrong[2]["SharedWeights"]["InputLayer"] = "in"  # type: ignore[index]
    assert "is not a Source of layer 'out'" in error_of(net(*wrong)).reason
    missing = copy.deepcopy(layers)
    del missing[2]["SharedWeights"]["SourceInputLayer"]  # type: ignore[attr-defined]
    error = error_of(net(*missing))
    assert (error.path, error.reason) == (
        "Layers[2].SharedWeights",
        "missing required field 'SourceInputLayer'",
    )


# --- resolving "auto" -----------------------------------------------------------------------------------


def test_resolve_sizes_replaces_auto_by_dataset_width() -> None:
    config = load_config(MOVIELENS)
    with pytest.raises(ValueError, match="no resolved size"):
        _ = config.layers[0].size
    assert not config.is_resolved
    resolved = config.resolve_sizes({"gl_input": 26752, "gl_output": 26880})
    assert resolved.is_resolved
    assert [layer.n for layer in resolved.layers] == [(26752,), (128,), (26880,)]
    assert [layer.size for layer in resolved.layers] == [26752, 128, 26880]
    assert config.layers[0].n == "auto"  # the original is untouched
    assert resolved.source == config.source


def test_resolve_sizes_with_an_unknown_dataset_lists_the_available_ones() -> None:
    config = load_config(MOVIELENS)
    with pytest.raises(ConfigError) as info:
        config.resolve_sizes({"gl_input": 10, "other": 5})
    error = info.value
    assert error.path == "Layers[2]"
    assert (
        error.reason
        == "DataSet 'gl_output' of layer 'Output' matches no dataset (available: gl_input, other)"
    )
    assert str(error).startswith(f"{MOVIELENS}: Layers[2]: ")
    with pytest.raises(ConfigError, match=r"available: none loaded"):
        config.resolve_sizes({})
    with pytest.raises(ValueError, match="width must be a positive int"):
        config.resolve_sizes({"gl_input": 0, "gl_output": 3})


# --- the objects ----------------------------------------------------------------------------------------


def test_configs_are_immutable_and_comparable() -> None:
    config = load_config(MOVIELENS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.layers[0].n = (3,)  # type: ignore[misc]
    assert isinstance(config.layers, tuple)
    assert hash(config) == hash(parse_config(movielens(), source="elsewhere"))  # source is not compared
    assert isinstance(config, NetworkConfig)
    assert isinstance(config.layers[0], LayerConfig)


def test_sparseness_penalty_for_layers() -> None:
    obj = net(
        {"N": 8},
        {"N": 4, "Sparse": True, "SparsenessPenalty": {"beta": 5}},
        {"N": 4, "Kind": "Hidden", "Sparse": False},
        {"N": 8, "Sparse": True},
        SparsenessPenalty={"p": 0.1, "beta": 1},
    )
    config = parse_config(obj)
    assert config.sparseness_penalty_for(config.layers[1]) == SparsenessPenaltyConfig(p=0.1, beta=5.0)
    assert config.sparseness_penalty_for(config.layers[2]) is None  # not sparse
    assert config.sparseness_penalty_for(config.layers[3]) is None  # not hidden
    off = parse_config({**obj, "SparsenessPenalty": {"p": 0.1}})  # network beta 0: off everywhere
    assert off.sparseness_penalty_for(off.layers[1]) is None
