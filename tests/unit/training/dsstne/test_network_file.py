"""The trained-network NetCDF layout (reference/dsstne.md §8): names, types, [N_in][N_out] weights."""

from __future__ import annotations

from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pytest

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

N_IO, N_HIDDEN = 128, 16  # an "auto" layer over a dataset of 100 features is 128 wide (padding included)


def _movielens_like() -> tuple[NetworkDescription, list[WeightRecord]]:
    """The shape of samples/movielens/config.json, scaled down."""
    sparse = int(LayerAttr.SPARSE)
    layers = [
        LayerRecord("Input", LayerKind.INPUT, nx=N_IO, data_set="gl_input", attributes=sparse),
        LayerRecord("Hidden", LayerKind.HIDDEN, nx=N_HIDDEN, attributes=sparse, sources=["Input"]),
        LayerRecord(
            "Output", LayerKind.OUTPUT, nx=N_IO, data_set="gl_output", attributes=sparse, sources=["Hidden"]
        ),
    ]
    network = NetworkDescription(
        name="AE",
        layers=layers,
        error_function=ErrorFunction.SCALED_MARGINAL_CROSS_ENTROPY,
        sparseness_penalty=True,
        sparseness_penalty_p=0.5,
        sparseness_penalty_beta=2.0,
        denoising=True,
        denoising_p=0.2,
        smce_one_target=1.0,
        smce_zero_target=0.0,
        shuffle_indices=False,
        checkpoint_name="gl.nc",
        checkpoint_interval=10,
    )
    rng = np.random.default_rng(0)
    weights = [
        WeightRecord(
            "Input", "Hidden", bias=rng.normal(size=N_HIDDEN), weights=rng.normal(size=(N_IO, N_HIDDEN))
        ),
        WeightRecord(
            "Hidden", "Output", bias=rng.normal(size=N_IO), weights=rng.normal(size=(N_HIDDEN, N_IO))
        ),
    ]
    return network, weights


def test_round_trip(tmp_path: Path) -> None:
    network, weights = _movielens_like()
    path = tmp_path / "gl.nc"
    write_network(path, network, weights)
    back, back_weights = read_network(path)
    assert back == network
    assert [layer.n for layer in back.layers] == [N_IO, N_HIDDEN, N_IO]
    assert back.layer("Output").activation == Activation.SIGMOID
    assert back.layer("Output").sparse
    for original, loaded in zip(weights, back_weights, strict=True):
        assert (loaded.input_layer, loaded.output_layer) == (original.input_layer, original.output_layer)
        assert loaded.weights is not None
        assert original.weights is not None
        assert loaded.weights.dtype == np.float32
        assert loaded.weights.shape == original.weights.shape
        np.testing.assert_array_equal(loaded.weights, original.weights)
        np.testing.assert_array_equal(loaded.bias, original.bias)
        assert (loaded.width, loaded.height, loaded.length, loaded.depth, loaded.breadth) == (
            original.width,
            original.height,
            1,
            1,
            1,
        )


def test_layout_names_and_types_follow_dsstne(tmp_path: Path) -> None:
    network, weights = _movielens_like()
    path = tmp_path / "gl.nc"
    write_network(path, network, weights)

    with h5py.File(path, "r") as f:

        def kind(key: str) -> str:
            dtype = f.attrs.get_id(key).dtype
            info = h5py.check_string_dtype(dtype)
            if info is not None:
                assert info.length is not None, f"{key} must be NC_CHAR (fixed length), not NC_STRING"
                return "char"
            assert f.attrs.get_id(key).shape == (1,), key  # netCDF-C stores scalars as 1-element arrays
            return str(dtype)

        expected_globals = {
            "version": "float32",
            "name": "char",
            "kind": "uint32",
            "errorFunction": "uint32",
            "maxout_k": "int32",
            "decay": "float32",
            "LRN_k": "float32",
            "LRN_n": "int32",
            "LRN_alpha": "float32",
            "LRN_beta": "float32",
            "bSparsenessPenalty": "uint32",
            "sparsenessPenalty_p": "float32",
            "sparsenessPenalty_beta": "float32",
            "bDenoising": "uint32",
            "denoising_p": "float32",
            "deltaBoost_one": "float32",
            "deltaBoost_zero": "float32",
            "SMCE_oneScale": "float32",
            "SMCE_zeroScale": "float32",
            "SMCE_oneTarget": "float32",
            "SMCE_zeroTarget": "float32",
            "ShuffleIndices": "uint32",
            "checkpoint_name": "char",
            "checkpoint_interval": "int32",
            "checkpoint_epochs": "int32",
            "layers": "uint32",
            "weights": "uint32",
        }
        for key, want in expected_globals.items():
            assert kind(key) == want, key
        assert float(f.attrs["version"][0]) == pytest.approx(0.9)
        assert int(f.attrs["errorFunction"][0]) == 3
        assert (int(f.attrs["layers"][0]), int(f.attrs["weights"][0])) == (3, 2)

        layer = {
            "name": "char",
            "kind": "uint32",
            "type": "uint32",
            "poolingfunction": "uint32",
            "dataSet": "char",
            "Nx": "uint32",
            "Ny": "uint32",
            "Nz": "uint32",
            "Nw": "uint32",
            "dimensions": "uint32",
            "pDropout": "float32",
            "weightInit": "uint32",
            "weightInitScale": "float32",
            "biasInit": "float32",
            "weightNorm": "float32",
            "deltaNorm": "float32",
            "activation": "uint32",
            "sparsenessPenalty_p": "float32",
            "sparsenessPenalty_beta": "float32",
            "RELUSlope": "float32",
            "ELUAlpha": "float32",
            "SELULambda": "float32",
            "attributes": "uint32",
            "sources": "uint32",
            "skips": "uint32",
            "kernelX": "uint32",
            "kernelStrideY": "uint32",
            "kernelPaddingZ": "uint32",
            "kernelDimensions": "uint32",
        }
        for key, want in layer.items():
            assert kind(f"layer1_{key}") == want, key
        assert f.attrs["layer2_source0"] == b"Hidden"
        assert int(f.attrs["layer0_sources"][0]) == 0
        assert isinstance(f.attrs["layer1_dataSet"], h5py.Empty)  # "" is a zero-length NC_CHAR
        assert f.attrs["layer0_dataSet"] == b"gl_input"

        weight = {
            "inputLayer": "char",
            "outputLayer": "char",
            "width": "uint64",
            "height": "uint64",
            "length": "uint64",
            "depth": "uint64",
            "breadth": "uint64",
            "bShared": "uint32",
            "bLocked": "uint32",
            "norm": "float32",
        }
        for key, want in weight.items():
            assert kind(f"weight0_{key}") == want, key
        assert (int(f.attrs["weight0_width"][0]), int(f.attrs["weight0_height"][0])) == (N_HIDDEN, N_IO)
        assert f["weight0_weights"].dtype == np.float32
        assert f["weight0_weights"].shape == (N_IO * N_HIDDEN,)
        assert f["weight0_bias"].shape == (N_HIDDEN,)
        # [N_in][N_out], N_out fastest: element (i, o) sits at i * N_out + o.
        flat = f["weight0_weights"][...]
        original = weights[0].weights
        assert original is not None
        assert flat[3 * N_HIDDEN + 5] == np.float32(original[3, 5])

    with h5netcdf.File(path, "r") as nc:
        assert nc.dimensions["weight0_weightDim"].size == N_IO * N_HIDDEN
        assert nc.dimensions["weight1_biasDim"].size == N_IO
        assert nc.variables["weight1_weights"].dimensions == ("weight1_weightDim",)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    network, weights = _movielens_like()
    path = tmp_path / "gl.nc"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=str(path)):
        write_network(path, network, weights)
    assert path.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["gl.nc"]
    write_network(path, network, weights, overwrite=True)  # the per-epoch re-save of `train -n`
    assert read_network(path)[0] == network


def test_shared_weights_store_their_source_instead_of_a_matrix(tmp_path: Path) -> None:
    network, weights = _movielens_like()
    tied = WeightRecord(
        "Hidden",
        "Output",
        bias=np.zeros(N_IO),
        height=N_HIDDEN,
        transposed=True,
        source_input_layer="Input",
        source_output_layer="Hidden",
    )
    path = tmp_path / "tied.nc"
    write_network(path, network, [weights[0], tied])
    with h5py.File(path, "r") as f:
        assert "weight1_weights" not in f
        assert int(f.attrs["weight1_bShared"][0]) == 1
        assert int(f.attrs["weight1_bTransposed"][0]) == 1
    _, (_, back) = read_network(path)
    assert back.shared
    assert back.transposed
    assert (back.source_input_layer, back.source_output_layer, back.height, back.width) == (
        "Input",
        "Hidden",
        N_HIDDEN,
        N_IO,
    )


def test_inconsistent_shapes_and_missing_attributes_are_errors(tmp_path: Path) -> None:
    network, weights = _movielens_like()
    wrong = WeightRecord("Input", "Hidden", bias=np.zeros(N_HIDDEN), weights=np.zeros((N_HIDDEN, N_IO)))
    with pytest.raises(ValueError, match="W has shape"):
        write_network(tmp_path / "bad.nc", network, [wrong])
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "gl.nc"
    write_network(path, network, weights)
    with h5py.File(path, "r+") as f:
        del f.attrs["layer1_Nx"]
    with pytest.raises(ValueError, match="missing attribute 'layer1_Nx'"):
        read_network(path)
