"""FmHyperparameters: SageMaker's names, defaults, validation, and the strings sent to CreateTrainingJob."""

from __future__ import annotations

import pytest

from training.fm.hyperparameters import FmHyperparameters, HyperparameterError


def test_defaults_are_the_services_and_epochs_is_always_sent() -> None:
    sent = FmHyperparameters(feature_dim=2625).to_sagemaker()
    assert sent["feature_dim"] == "2625"
    assert sent["epochs"] == "1"
    assert sent["mini_batch_size"] == "1000"
    assert sent["predictor_type"] == "binary_classifier"
    assert (sent["bias_lr"], sent["linear_lr"], sent["factors_lr"]) == ("0.1", "0.001", "0.0001")
    assert (sent["bias_wd"], sent["linear_wd"], sent["factors_wd"]) == ("0.01", "0.001", "1e-05")
    assert sent["factors_init_sigma"] == "0.001"
    assert "clip_gradient" not in sent  # unset optional values are left to the service
    assert all(isinstance(value, str) for value in sent.values())


def test_strings_read_back_to_the_same_settings() -> None:
    hp = FmHyperparameters(
        feature_dim=10,
        num_factors=8,
        predictor_type="regressor",
        epochs=30,
        factors_init_method="uniform",
        factors_init_scale=0.05,
        clip_gradient=5.0,
    )
    assert FmHyperparameters.from_mapping(hp.to_sagemaker()) == hp


def test_meta_json_style_integers_with_a_fraction_part_are_accepted() -> None:
    assert FmHyperparameters.from_mapping({"feature_dim": "10.0", "epochs": "3"}).feature_dim == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"feature_dim": 0}, "feature_dim"),
        ({"feature_dim": 10, "num_factors": -1}, "num_factors"),
        ({"feature_dim": 10, "epochs": True}, "epochs"),
        ({"feature_dim": 10, "predictor_type": "multiclass"}, "predictor_type"),
        ({"feature_dim": 10, "factors_lr": -0.1}, "factors_lr"),
        ({"feature_dim": 10, "bias_wd": float("nan")}, "bias_wd"),
        ({"feature_dim": 10, "linear_init_method": "xavier"}, "linear_init_method"),
        ({"feature_dim": 10, "bias_init_method": "constant"}, "bias_init_value"),
        ({"feature_dim": 10, "factors_init_method": "uniform"}, "factors_init_scale"),
    ],
)
def test_values_sagemaker_would_refuse_are_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        FmHyperparameters(**values)  # type: ignore[arg-type]


def test_parsing_names_unknown_and_malformed_values() -> None:
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter.*num_factor"):
        FmHyperparameters.from_mapping({"feature_dim": "10", "num_factor": "8"})
    with pytest.raises(HyperparameterError, match=r"epochs='2\.5'"):
        FmHyperparameters.from_mapping({"feature_dim": "10", "epochs": "2.5"})
    with pytest.raises(HyperparameterError, match="feature_dim is required"):
        FmHyperparameters.from_mapping({"epochs": "2"})
