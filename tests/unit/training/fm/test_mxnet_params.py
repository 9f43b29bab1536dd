"""The numpy-only NDArray-list reader against an independent writer and the reference's 283-byte example."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.unit.training.fm.ndarray_writer import array_bytes, ndarray_list
from training.fm.mxnet_params import NDArrayFormatError, load_ndarray_list, read_ndarray_list

# mx.nd.save of {"arg:w0_weight": (1,), "arg:w1_weight": (5, 1), "arg:v": (5, 3)}: the first bytes, as
# listed in ../shared/reference/sagemaker-fm.md §5.2 (header, reserved, count, then the first array).
EXAMPLE_PREFIX = bytes.fromhex(
    "1201000000000000 0000000000000000 0300000000000000"  # list header 0x112, reserved, 3 arrays
    " c9fa93f9 00000000 01000000 0100000000000000"  # V2 magic, dense, ndim 1, dim 1
    " 01000000 00000000 00000000 0000803e".replace(" ", "")  # cpu, dev_id 0, float32, 0.25
)


# Produced by mxnet 1.9.1 itself (outside this environment), the oracle the reference suggests:
# SHA-256 of `mx.nd.save` of _example() and of `npx.save` of _v3_example(); and the whole file of
# `mx.nd.save("…", {"arg:v": mx.nd.array(np.eye(3, dtype=np.float32)).tostype("csr")})`.
MXNET_EXAMPLE_SHA256 = "89b1c6d8c4b2952d251ef9d761d718f70ff650ff40f3661d4eb404a86248b9fa"
MXNET_V3_SHA256 = "caca5cf5b5fbdb2681a19780b884af2242ca24be7acbac398c53ccfbc59f0bbb"
MXNET_CSR = bytes.fromhex(
    "120100000000000000000000000000000100000000000000c9fa93f902000000010000000000000000000000"
    "020000000300000000000000030000000000000001000000000000000000000006000000010000000400000000"
    "000000060000000100000003000000000000000000803f0000803f0000803f000000000000000001000000000000"
    "00020000000000000003000000000000000000000000000000010000000000000002000000000000000100000000"
    "0000000500000000000000" + b"arg:v".hex()
)


def _v3_example() -> dict[str, np.ndarray]:
    return {"a": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "s": np.array(1.5, np.float32)}


def _example() -> dict[str, np.ndarray]:
    return {
        "arg:w0_weight": np.array([0.25], np.float32),
        "arg:w1_weight": np.arange(5, dtype=np.float32).reshape(5, 1) / 8,
        "arg:v": np.arange(15, dtype=np.float32).reshape(5, 3) / 16,
    }


def test_the_reference_example_is_283_bytes_and_reads_back() -> None:
    data = ndarray_list(_example())
    assert len(data) == 283
    assert data.startswith(EXAMPLE_PREFIX)
    parsed = read_ndarray_list(data, source="example")
    assert parsed.names == ["arg:w0_weight", "arg:w1_weight", "arg:v"]
    assert parsed.versions == ("V2", "V2", "V2")
    for (name, expected), got in zip(_example().items(), parsed.arrays, strict=True):
        assert got is not None, name
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def test_the_test_writer_writes_what_mxnet_writes() -> None:
    assert hashlib.sha256(ndarray_list(_example())).hexdigest() == MXNET_EXAMPLE_SHA256
    assert hashlib.sha256(ndarray_list(_v3_example(), version="V3")).hexdigest() == MXNET_V3_SHA256


def test_mxnets_own_csr_file_is_refused_as_sparse() -> None:
    with pytest.raises(NDArrayFormatError, match=r"^csr\.params: array #0: storage type csr: only dense"):
        read_ndarray_list(MXNET_CSR, source="csr.params")


@pytest.mark.parametrize("version", ["V1", "V2", "V3"])
def test_every_array_version_reads_back(version: str) -> None:
    arrays = {
        "a": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "b": np.arange(6, dtype=np.float64).reshape(1, 2, 3),
        "c": np.array([7, -8], np.int32),
        "d": np.zeros((0, 3), np.float32),
    }
    parsed = read_ndarray_list(ndarray_list(arrays, version=version))
    assert parsed.versions == (version,) * 4
    for name, got in parsed.as_dict().items():
        assert got is not None
        assert got.dtype == arrays[name].dtype
        assert got.shape == arrays[name].shape
        np.testing.assert_array_equal(got, arrays[name])


def test_none_arrays_and_v3_scalars() -> None:
    assert read_ndarray_list(ndarray_list([None], version="V2")).arrays == [None]
    assert read_ndarray_list(ndarray_list([None], version="V1")).arrays == [None]
    assert read_ndarray_list(ndarray_list([None], version="V3")).arrays == [None]
    # numpy-shape semantics: ndim 0 is a scalar holding one value, not "none"
    scalar = read_ndarray_list(ndarray_list(_v3_example(), version="V3")).arrays[1]
    assert scalar is not None
    assert scalar.shape == ()
    assert float(scalar) == 1.5


def test_a_list_save_has_no_names(tmp_path: Path) -> None:
    path = tmp_path / "model_algo-1"
    path.write_bytes(ndarray_list([np.ones((10, 10), np.float32)]))
    parsed = load_ndarray_list(path)
    assert parsed.names is None
    with pytest.raises(NDArrayFormatError, match="no names"):
        parsed.as_dict()


def test_the_reader_returns_writable_native_arrays() -> None:
    got = read_ndarray_list(ndarray_list([np.ones(3, np.float32)])).arrays[0]
    assert got is not None
    got[0] = 2.0  # not a read-only view of the input bytes
    assert got.dtype.isnative


# --- malformed files -------------------------------------------------------------------------------------


def test_wrong_list_header() -> None:
    with pytest.raises(NDArrayFormatError, match=r"params: header: not an MXNet NDArray list: header 0x113"):
        read_ndarray_list(ndarray_list(_example(), header=0x113), source="params")


def test_wrong_array_magic_names_the_array_and_offset() -> None:
    good = array_bytes(np.ones(2, np.float32))
    bad = array_bytes(np.ones(2, np.float32), magic=0xDEADBEEF)
    data = struct.pack("<QQQ", 0x112, 0, 2) + good + bad + struct.pack("<Q", 0)
    with pytest.raises(NDArrayFormatError) as error:
        read_ndarray_list(data, source="p")
    message = str(error.value)
    assert "array #1" in message
    assert "wrong array magic 0xdeadbeef" in message
    assert f"at byte {24 + len(good)}" in message


def test_pre_v1_legacy_files_are_refused() -> None:
    # Before V1 the first word of an array was its ndim; such files are not SageMaker's.
    legacy = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<I", 1) + struct.pack("<I", 2)
    with pytest.raises(NDArrayFormatError, match="wrong array magic 0x00000001"):
        read_ndarray_list(legacy)


@pytest.mark.parametrize(
    ("stype", "name"), [(1, "row_sparse"), (2, "csr"), (9, "unknown"), (-1, "undefined with ndim 2")]
)
def test_sparse_arrays_are_refused_clearly(stype: int, name: str) -> None:
    data = ndarray_list({"arg:v": np.ones((2, 2), np.float32)}, stype=stype)
    with pytest.raises(NDArrayFormatError, match=rf"array #0: storage type {name}.*only dense"):
        read_ndarray_list(data)


def test_every_truncation_is_a_format_error_naming_the_source() -> None:
    data = ndarray_list(_example())
    for cut in range(len(data)):
        with pytest.raises(NDArrayFormatError, match=r"^params\.bin: ") as error:
            read_ndarray_list(data[:cut], source="params.bin")
        assert "truncated" in str(error.value), cut


@pytest.mark.parametrize(
    ("cut", "where"),
    [
        (10, "header: truncated: the reserved word"),
        (24 + 30, "array #0: truncated: the type flag needs 4 bytes, 2 left"),
        (60 + 50, "array #1: truncated: 5 float32 values of shape (5, 1) needs 20 bytes, 10 left"),
        (283 - 3, "name #2: truncated: a name of 5 bytes"),
    ],
)
def test_truncation_messages_say_what_is_missing(cut: int, where: str) -> None:
    with pytest.raises(NDArrayFormatError, match="^p: " + re.escape(where)):
        read_ndarray_list(ndarray_list(_example())[:cut], source="p")


def test_names_count_must_be_zero_or_the_array_count() -> None:
    with pytest.raises(NDArrayFormatError, match="names: 2 names for 3 arrays"):
        read_ndarray_list(ndarray_list(_example(), names_count=2))


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(NDArrayFormatError, match="end: 4 unexpected bytes"):
        read_ndarray_list(ndarray_list(_example()) + b"\0\0\0\0")


def test_absurd_counts_and_shapes_are_refused_without_allocating() -> None:
    huge_count = struct.pack("<QQQ", 0x112, 0, 1 << 60)
    with pytest.raises(NDArrayFormatError, match="truncated or not a count"):
        read_ndarray_list(huge_count + b"\0" * 64)
    # a shape whose product would overflow int64
    array = struct.pack("<Ii", 0xF993FAC9, 0) + struct.pack("<i", 2) + struct.pack("<qq", 1 << 40, 1 << 40)
    array += struct.pack("<iii", 1, 0, 0)
    with pytest.raises(NDArrayFormatError, match="truncated"):
        read_ndarray_list(struct.pack("<QQQ", 0x112, 0, 1) + array + b"\0" * 16)
    negative = struct.pack("<Ii", 0xF993FAC9, 0) + struct.pack("<i", -3) + b"\0" * 32
    with pytest.raises(NDArrayFormatError, match="ndim -3"):
        read_ndarray_list(struct.pack("<QQQ", 0x112, 0, 1) + negative)


def test_unreadable_dtypes_are_named() -> None:
    bf16 = array_bytes(np.zeros(2, np.float16), type_flag=12)  # 2-byte values flagged as bfloat16
    data = struct.pack("<QQQ", 0x112, 0, 1) + bf16 + struct.pack("<Q", 0)
    with pytest.raises(NDArrayFormatError, match="dtype bfloat16 cannot be read"):
        read_ndarray_list(data)
