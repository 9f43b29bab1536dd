"""config.json → engine spec, initial weights, and the trained-network file both ways (network.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.dsstne.config import ConfigError, NetworkConfig, load_config, parse_config
from training.dsstne.engine import LayerSpec, NetworkSpec
from training.dsstne.losses import SparseLoss
from training.dsstne.network import (
    UnsupportedFeatureError,
    build_spec,
    initial_weights,
    load_network,
    save_network,
)
from training.dsstne.network_file import (
    Activation,
    ErrorFunction,
    LayerAttr,
    LayerKind,
    LayerRecord,
    NetworkDescription,
    WeightRecord,
    read_network,
    write_network,
)

DATA = Path(__file__).parent / "data"
MOVIELENS = DATA / "movielens-config.json"
WIDTHS = {"gl_input": 256, "gl_output": 128}


def movielens() -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(MOVIELENS.read_text())
    return obj


def config_with(change: Any) -> NetworkConfig:
    """The MovieLens config after `change(obj)` edits its JSON object."""
    obj = copy.deepcopy(movielens())
    change(obj)
    return parse_config(obj, "edited.json")


def test_movielens_config_becomes_the_engines_network() -> None:
    spec, input_name, output_name = build_spec(load_config(MOVIELENS), WIDTHS)
    assert (input_name, output_name) == ("gl_input", "gl_output")
    assert spec == NetworkSpec(
        input_width=256,
        layers=(LayerSpec(128, "sigmoid", (0.5, 2.0)), LayerSpec(128, "sigmoid", None)),
        loss=SparseLoss("smce", one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0),
        denoising=0.2,
    )


def test_defaults_and_other_losses() -> None:
    def edit(obj: dict[str, Any]) -> None:
        for key in ("ScaledMarginalCrossEntropy", "ErrorFunction", "Denoising", "SparsenessPenalty"):
            del obj[key]
        obj["DeltaBoost"] = {"one": 2.0, "zero": 0.5}
        obj["Layers"][1]["Activation"] = "Relu"

    spec, _, _ = build_spec(config_with(edit), WIDTHS)
    assert spec.loss == SparseLoss("crossentropy", 0.9, 0.1, 1.0, 1.0, boost_one=2.0, boost_zero=0.5)
    assert spec.denoising == 0.0
    assert spec.layers[0] == LayerSpec(128, "relu", None)


def test_identity_quirk_activations_run_as_linear() -> None:
    spec, _, _ = build_spec(config_with(lambda o: o["Layers"][1].update(Activation="SoftPlus")), WIDTHS)
    assert spec.layers[0].activation == "linear"


def test_explicit_n_must_pad_to_the_dataset_width() -> None:
    spec, _, _ = build_spec(config_with(lambda o: o["Layers"][0].update(N=200)), WIDTHS)
    assert spec.input_width == 256  # 200 features pad to the dataset's 256
    with pytest.raises(ConfigError, match=r"N 300, but DataSet 'gl_input' is 256 wide"):
        build_spec(config_with(lambda o: o["Layers"][0].update(N=300)), WIDTHS)


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"DataSet 'gl_output' .* \(available: gl_input, other\)"):
        build_spec(load_config(MOVIELENS), {"gl_input": 256, "other": 128})


def _hidden(**extra: Any) -> dict[str, Any]:
    return {"Name": "Hidden2", "Kind": "Hidden", "N": 32, **extra}


UNSUPPORTED = {
    "SoftMax output": (lambda o: o["Layers"][2].update(Activation="SoftMax"), "Softmax output layer"),
    "pDropout": (lambda o: o["Layers"][1].update(pDropout=0.5), "pDropout on Hidden layers"),
    "WeightNorm": (lambda o: o["Layers"][1].update(WeightNorm=1.0), "WeightNorm"),
    "DeltaNorm": (lambda o: o["Layers"][2].update(DeltaNorm=1.0), "DeltaNorm"),
    "BatchNormalization": (lambda o: o["Layers"][1].update(BatchNormalization=True), "BatchNormalization"),
    "Elu": (lambda o: o["Layers"][1].update(Activation="Elu"), "Elu activation"),
    "L1": (lambda o: o.update(ErrorFunction="L1"), "ErrorFunction L1"),
    "DSMCE": (
        lambda o: o.update(ErrorFunction="DataScaledMarginalCrossEntropy"),
        "ErrorFunction DataScaledMarginalCrossEntropy",
    ),
    "Skip": (lambda o: o["Layers"][2].update(Skip="Input"), "Skip connections"),
    "several sources": (
        lambda o: o["Layers"].insert(2, _hidden(Source=["Input", "Hidden"])),
        "several sources",
    ),
    "branch": (lambda o: o["Layers"].insert(2, _hidden(Source="Input")), "feeding several layers"),
    "Convolutional": (
        lambda o: o["Layers"][1].update(Type="Convolutional", Kernel=[3]),
        "Convolutional layers",
    ),
    "two outputs": (
        lambda o: o["Layers"].append({"Name": "Output2", "Kind": "Output", "N": 8, "Source": "Hidden"}),
        "2 Output layers",
    ),
    "no hidden layer": (lambda o: o["Layers"].pop(1), "a network without Hidden layers"),
    "Target layer": (
        lambda o: o["Layers"].append({"Name": "T", "Kind": "Target", "N": 8, "Source": "Output"}),
        "Target layers",
    ),
    "SharedWeights": (
        lambda o: o["Layers"][2].update(
            SharedWeights={"InputLayer": "Hidden", "SourceInputLayer": "Input", "SourceOutputLayer": "Hidden"}
        ),
        "SharedWeights",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_features_are_named(case: str) -> None:
    change, feature = UNSUPPORTED[case]
    config = config_with(change)
    with pytest.raises(UnsupportedFeatureError, match="not supported by this engine yet") as caught:
        build_spec(config, WIDTHS)
    assert feature in str(caught.value)
    assert str(caught.value).startswith("edited.json: ")


def test_initial_weights_follow_each_layers_weight_init() -> None:
    def edit(obj: dict[str, Any]) -> None:
        obj["Layers"][2]["WeightInit"] = {"Scheme": "Gaussian", "Scale": 0.01, "Bias": -10.2}

    config = config_with(edit)
    spec, _, _ = build_spec(config, WIDTHS)
    weights = initial_weights(config, spec)
    assert [tuple(w.shape) for w in weights.w] == [(256, 128), (128, 128)]
    assert [tuple(b.shape) for b in weights.b] == [(128,), (128,)]
    # Input → Hidden: Xavier, DSSTNE's half range 0.5·√(6 / (256 + 128)) = 0.0625.
    assert float(weights.w[0].abs().max()) <= 0.0625
    assert float(weights.w[0].abs().max()) > 0.06
    assert torch.all(weights.b[0] == 0)
    # Hidden → Output: Gaussian(0.01) with bias −10.2.
    assert float(weights.w[1].std()) == pytest.approx(0.01, rel=0.05)
    assert torch.all(weights.b[1] == torch.tensor(-10.2))
    again = initial_weights(config, spec)
    assert all(torch.equal(a, b) for a, b in zip(weights.w, again.w, strict=True))
    other = initial_weights(config, spec, seed=1)
    assert not torch.equal(weights.w[0], other.w[0])


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    config = load_config(MOVIELENS)
    spec, _, _ = build_spec(config, WIDTHS)
    weights = initial_weights(config, spec)
    path = tmp_path / "gl.nc"
    save_network(path, config, spec, weights, checkpoint_name="gl.nc", checkpoint_interval=10)
    loaded, loaded_weights, input_name, output_name = load_network(path)
    assert loaded == spec
    assert (input_name, output_name) == ("gl_input", "gl_output")
    for mine, theirs in zip(weights.w + weights.b, loaded_weights.w + loaded_weights.b, strict=True):
        assert torch.equal(mine, theirs)
    # The file carries DSSTNE's descriptor of the network, as its SaveNetCDF writes it.
    network, records = read_network(path)
    assert network.error_function == ErrorFunction.SCALED_MARGINAL_CROSS_ENTROPY
    assert (network.name, network.checkpoint_name, network.checkpoint_interval) == ("AE", "gl.nc", 10)
    assert (network.denoising, network.sparseness_penalty, network.shuffle_indices) == (True, True, False)
    assert [(layer.name, layer.kind, layer.n) for layer in network.layers] == [
        ("Input", LayerKind.INPUT, 256),
        ("Hidden", LayerKind.HIDDEN, 128),
        ("Output", LayerKind.OUTPUT, 128),
    ]
    assert network.layers[0].attributes == LayerAttr.SPARSE | LayerAttr.DENOISING
    assert network.layers[2].sources == ["Hidden"]
    assert [(r.input_layer, r.output_layer) for r in records] == [("Input", "Hidden"), ("Hidden", "Output")]


def test_save_refuses_an_existing_file_unless_told(tmp_path: Path) -> None:
    config = load_config(MOVIELENS)
    spec, _, _ = build_spec(config, WIDTHS)
    weights = initial_weights(config, spec)
    path = tmp_path / "gl.nc"
    path.write_text("not mine")
    with pytest.raises(FileExistsError):
        save_network(path, config, spec, weights)
    assert path.read_text() == "not mine"
    save_network(path, config, spec, weights, overwrite=True)
    assert load_network(path)[0] == spec


def _dsstne_file(
    path: Path, *, output_activation: int = Activation.SIGMOID, skip: bool = False, error: int = 3
) -> None:
    """A network as DSSTNE's own train would write it: pDropout on the hidden layer, a Relu hidden
    layer with its own penalty p, an output layer not named "Output", weights listed out of order."""
    sparse = int(LayerAttr.SPARSE)
    layers = [
        LayerRecord(
            "In", LayerKind.INPUT, nx=128, data_set="x_input", attributes=sparse | LayerAttr.DENOISING
        ),
        LayerRecord(
            "H",
            LayerKind.HIDDEN,
            nx=16,
            attributes=sparse,
            sources=["In"],
            activation=Activation.RELU,
            p_dropout=0.5,
            sparseness_penalty_p=0.1,
        ),
        LayerRecord(
            "Out",
            LayerKind.OUTPUT,
            nx=128,
            data_set="x_output",
            sources=["H"],
            skips=["In"] if skip else [],
            activation=output_activation,
        ),
    ]
    network = NetworkDescription(
        name="AE",
        layers=layers,
        error_function=error,
        sparseness_penalty=True,
        sparseness_penalty_p=0.5,
        sparseness_penalty_beta=2.0,
        denoising=True,
        denoising_p=0.2,
    )
    rng = np.random.default_rng(0)
    weights = [
        WeightRecord("H", "Out", bias=rng.normal(size=128), weights=rng.normal(size=(16, 128))),
        WeightRecord("In", "H", bias=rng.normal(size=16), weights=rng.normal(size=(128, 16))),
    ]
    write_network(path, network, weights)


def test_loads_a_network_in_dsstnes_layout(tmp_path: Path) -> None:
    path = tmp_path / "dsstne.nc"
    _dsstne_file(path)
    spec, weights, input_name, output_name = load_network(path)
    assert (input_name, output_name) == ("x_input", "x_output")
    assert spec == NetworkSpec(
        input_width=128,
        layers=(LayerSpec(16, "relu", (0.1, 2.0)), LayerSpec(128, "sigmoid", None)),
        loss=SparseLoss("smce"),
        denoising=0.2,
    )
    _, records = read_network(path)
    np.testing.assert_array_equal(weights.w[0].numpy(), records[1].weights)
    np.testing.assert_array_equal(weights.b[1].numpy(), records[0].bias)


@pytest.mark.parametrize(
    ("kwargs", "feature"),
    [
        ({"output_activation": Activation.SOFTMAX}, "Softmax activation"),
        ({"skip": True}, "Skip connections"),
        ({"error": ErrorFunction.L1}, "error function L1"),
    ],
)
def test_dsstne_networks_with_unsupported_features_are_refused(
    tmp_path: Path, kwargs: dict[str, Any], feature: str
) -> None:
    path = tmp_path / "dsstne.nc"
    _dsstne_file(path, **kwargs)
    with pytest.raises(UnsupportedFeatureError, match=feature) as caught:
        load_network(path)
    assert str(caught.value).startswith(str(path))
