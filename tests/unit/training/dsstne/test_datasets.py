"""DSSTNE's sparse NetCDF datasets: the userguide's ncdump example byte for byte, round trips, CSR views."""

from __future__ import annotations

from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pytest

from training.dsstne.datasets import (
    SparseDataset,
    from_feature_lists,
    read_netcdf,
    round_up_width,
    write_netcdf,
)

# docs/getting_started/userguide.md: 3 samples, 8 features, first line `Example1\tFeature1:Feature2:Feature3`.
USERGUIDE_ROWS = [[0, 1, 2], [3, 1, 4], [5, 6, 7]]


def _attr(f: h5py.File, key: str) -> tuple[np.dtype, object]:
    """An attribute's stored HDF5 type and value, as netCDF-C will see them."""
    return f.attrs.get_id(key).dtype, f.attrs[key]


def test_userguide_indicator_example_layout(tmp_path: Path) -> None:
    path = tmp_path / "indicators.nc"
    write_netcdf(path, [from_feature_lists("indicators", USERGUIDE_ROWS, n_features=8)])

    with h5py.File(path, "r") as f:
        for key, value in [
            ("datasets", 1),
            ("attributes0", 3),
            ("kind0", 0),
            ("dataType0", 0),
            ("dimensions0", 1),
            ("width0", 128),
        ]:
            dtype, stored = _attr(f, key)
            assert dtype == np.uint32, key  # `1U`: NC_UINT
            assert np.asarray(stored).tolist() == [value], key
        name_type = h5py.check_string_dtype(f.attrs.get_id("name0").dtype)
        assert name_type is not None
        assert name_type.length == len("indicators")
        assert f.attrs["name0"] == b"indicators"
        assert {k for k in f.attrs if not k.startswith("_")} == {
            "datasets",
            "name0",
            "attributes0",
            "kind0",
            "dataType0",
            "dimensions0",
            "width0",
        }
        assert "sparseData0" not in f

    with h5netcdf.File(path, "r") as nc:
        assert dict(nc.dimensions).keys() == {"examplesDim0", "sparseDataDim0"}
        assert nc.dimensions["examplesDim0"].size == 3
        assert nc.dimensions["sparseDataDim0"].size == 9
        expected = {
            "sparseStart0": ("examplesDim0", [0, 3, 6]),
            "sparseEnd0": ("examplesDim0", [3, 6, 9]),
            "sparseIndex0": ("sparseDataDim0", [0, 1, 2, 3, 1, 4, 5, 6, 7]),
        }
        assert set(nc.variables) == set(expected)
        for name, (dim, values) in expected.items():
            var = nc.variables[name]
            assert var.dtype == np.uint32, name
            assert var.dimensions == (dim,)
            assert var[...].tolist() == values


def test_analog_dataset_has_float_values_and_sparse_only_attributes(tmp_path: Path) -> None:
    path = tmp_path / "analog.nc"
    values = [[1.0, 2.5, 3.0], [4.0, 0.5, 6.0], [7.0, 8.0, 9.25]]
    write_netcdf(path, [from_feature_lists("analog", USERGUIDE_ROWS, n_features=8, values=values)])

    with h5py.File(path, "r") as f:
        assert np.asarray(f.attrs["attributes0"]).tolist() == [1]  # Sparse only
        assert np.asarray(f.attrs["dataType0"]).tolist() == [4]  # Float
        assert f["sparseData0"].dtype == np.float32
        assert f["sparseData0"][...].tolist() == [1.0, 2.5, 3.0, 4.0, 0.5, 6.0, 7.0, 8.0, 9.25]
    (back,) = read_netcdf(path)
    assert not back.is_boolean
    assert back.csr_values() is not None
    assert back.csr_values().tolist() == [1.0, 2.5, 3.0, 4.0, 0.5, 6.0, 7.0, 8.0, 9.25]


def test_round_trip_of_several_datasets_numbers_them_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "two.nc"
    first = from_feature_lists("input", [[0, 5], [], [7]], n_features=130)
    second = from_feature_lists("output", [[1], [2, 3], [4]], n_features=5, values=[[0.5], [1, 2], [3]])
    write_netcdf(path, [first, second])

    with h5py.File(path, "r") as f:
        assert np.asarray(f.attrs["datasets"]).tolist() == [2]
        assert f.attrs["name1"] == b"output"
        assert f["sparseIndex1"].dtype == np.uint32
    a, b = read_netcdf(path)
    assert (a.name, a.width, a.examples, a.nnz) == ("input", 256, 3, 3)
    assert (b.name, b.width, b.examples, b.nnz) == ("output", 128, 3, 4)
    assert a.start.dtype == np.uint32
    assert a.index.dtype == np.uint32
    indptr, indices = a.to_csr()
    assert indptr.dtype == np.int64
    assert indices.dtype == np.int64
    assert indptr.tolist() == [0, 2, 2, 3]
    assert indices.tolist() == [0, 5, 7]
    assert a.is_boolean
    assert a.values is None
    assert b.values is not None
    assert b.values.dtype == np.float32


def test_width_rounds_up_to_a_multiple_of_128() -> None:
    assert [round_up_width(n) for n in (0, 1, 127, 128, 129, 26_744)] == [0, 128, 128, 128, 256, 26_752]


def test_reader_accepts_64_bit_row_pointers_and_gathers_non_contiguous_rows(tmp_path: Path) -> None:
    path = tmp_path / "u64.nc"
    with h5netcdf.File(path, "w") as nc:
        nc.attrs["datasets"] = np.uint32(1)
        nc.attrs["name0"] = np.bytes_(b"old")
        for key, value in [("attributes0", 3), ("kind0", 0), ("dataType0", 0), ("dimensions0", 1)]:
            nc.attrs[key] = np.uint32(value)
        nc.attrs["width0"] = np.uint32(128)
        nc.dimensions = {"examplesDim0": 2, "sparseDataDim0": 4}
        nc.create_variable("sparseStart0", ("examplesDim0",), data=np.array([2, 0], dtype=np.uint64))
        nc.create_variable("sparseEnd0", ("examplesDim0",), data=np.array([4, 2], dtype=np.uint64))
        nc.create_variable("sparseIndex0", ("sparseDataDim0",), data=np.array([9, 8, 1, 2], dtype=np.uint32))
    (ds,) = read_netcdf(path)
    assert ds.name == "old"
    indptr, indices = ds.to_csr()
    assert indptr.tolist() == [0, 2, 4]
    assert indices.tolist() == [1, 2, 9, 8]


def test_invalid_datasets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the width"):
        SparseDataset("x", width=4, start=np.array([0]), end=np.array([1]), index=np.array([4]))
    with pytest.raises(ValueError, match="row ranges"):
        SparseDataset("x", width=4, start=np.array([0]), end=np.array([2]), index=np.array([1]))
    with pytest.raises(ValueError, match="no examples"):
        write_netcdf(tmp_path / "empty.nc", [from_feature_lists("x", [], n_features=3)])
    assert not (tmp_path / "empty.nc").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    h5netcdf.File(tmp_path / "other.nc", "w").close()
    with pytest.raises(ValueError, match="not a DSSTNE dataset"):
        read_netcdf(tmp_path / "other.nc")
