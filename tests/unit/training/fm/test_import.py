"""`recsys fm import-sagemaker-model`: SageMaker FM tarballs (both schemes, every orientation) → FmModel."""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import contracts
from tests.unit.training.fm.ndarray_writer import (
    SYMBOL_JSON,
    fm_model_tar,
    fm_params,
    meta_json,
    model_tar,
    model_zip,
    ndarray_list,
)
from training.fm import cli_import
from training.fm.artifact import FmModel
from training.fm.sagemaker_model import SageMakerModelError, import_sagemaker_model

FEATURE_DIM, NUM_FACTORS = 7, 3


def _truth(seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=FEATURE_DIM).astype(np.float32)
    v = rng.normal(size=(FEATURE_DIM, NUM_FACTORS)).astype(np.float32)
    return 0.125, w, v


def _tar(tmp_path: Path, scheme: str = "A", version: str = "V2", **kwargs: object) -> Path:
    w0, w, v = _truth()
    params = fm_params(w0, w, v, scheme=scheme, **kwargs)  # type: ignore[arg-type]
    return fm_model_tar(
        tmp_path / f"model-{scheme}-{version}.tar.gz",
        params,
        feature_dim=FEATURE_DIM,
        num_factors=NUM_FACTORS,
        version=version,
    )


def _assert_truth(model: FmModel) -> None:
    w0, w, v = _truth()
    assert model.w0 == pytest.approx(w0)
    np.testing.assert_array_equal(model.w, w)
    np.testing.assert_array_equal(model.V, v)
    assert model.w.dtype == np.float32
    assert model.V.dtype == np.float32
    assert model.V.flags.c_contiguous


@pytest.mark.parametrize("scheme", ["A", "B"])
@pytest.mark.parametrize("version", ["V1", "V2", "V3"])
def test_both_schemes_and_every_array_version_give_the_same_model(
    tmp_path: Path, scheme: str, version: str
) -> None:
    model = import_sagemaker_model(_tar(tmp_path, scheme, version))
    _assert_truth(model)
    assert model.predictor_type == "binary_classifier"
    assert model.hyperparameters["feature_dim"] == str(FEATURE_DIM)
    assert model.hyperparameters["epochs"] == "20"
    assert model.layout is None


@pytest.mark.parametrize("scheme", ["A", "B"])
def test_either_orientation_of_v_is_accepted_under_either_name_scheme(tmp_path: Path, scheme: str) -> None:
    # A with v stored (num_factors, feature_dim), B with v stored (feature_dim, num_factors)
    _assert_truth(import_sagemaker_model(_tar(tmp_path, scheme, transpose_v=scheme == "A")))


def test_a_multi_host_tarball_uses_model_algo_1(tmp_path: Path) -> None:
    w0, w, v = _truth()
    good = model_zip(
        {
            "meta.json": meta_json(FEATURE_DIM, NUM_FACTORS),
            "symbol.json": SYMBOL_JSON.encode(),
            "params": ndarray_list(fm_params(w0, w, v)),
        }
    )
    path = model_tar(tmp_path / "m.tar.gz", {"model_algo-2": b"junk", "./model_algo-1": good, "state_x": b""})
    _assert_truth(import_sagemaker_model(path))


def test_a_bare_ndarray_list_needs_names_and_a_predictor_type(tmp_path: Path) -> None:
    w0, w, v = _truth()
    named = model_tar(tmp_path / "named.tar.gz", {"model_algo-1": ndarray_list(fm_params(w0, w, v))})
    with pytest.raises(SageMakerModelError, match=r"no meta\.json to take predictor_type from"):
        import_sagemaker_model(named)
    model = import_sagemaker_model(named, predictor_type="regressor")
    _assert_truth(model)
    assert model.predictor_type == "regressor"
    unnamed = model_tar(
        tmp_path / "unnamed.tar.gz", {"model_algo-1": ndarray_list(list(fm_params(w0, w, v).values()))}
    )
    with pytest.raises(
        SageMakerModelError, match=r"unnamed\.tar\.gz!model_algo-1: the parameters have no names"
    ):
        import_sagemaker_model(unnamed, predictor_type="regressor")


# --- malformed inputs: each error names the file and the member ----------------------------------------


def _zip_tar(tmp_path: Path, members: dict[str, bytes], name: str = "bad.tar.gz") -> Path:
    return model_tar(tmp_path / name, {"model_algo-1": model_zip(members)})


def _members(params: bytes, meta: bytes | None = None) -> dict[str, bytes]:
    return {
        "meta.json": meta if meta is not None else meta_json(FEATURE_DIM, NUM_FACTORS),
        "symbol.json": SYMBOL_JSON.encode(),
        "params": params,
    }


def _good_params(**overrides: np.ndarray) -> dict[str, np.ndarray]:
    params = fm_params(*_truth())
    params.update(overrides)
    return params


def test_wrong_magic(tmp_path: Path) -> None:
    path = _zip_tar(tmp_path, _members(ndarray_list(_good_params(), magic=0x12345678)))
    with pytest.raises(
        SageMakerModelError, match=r"bad\.tar\.gz!model_algo-1!params: array #0: wrong array magic"
    ):
        import_sagemaker_model(path)


@pytest.mark.parametrize("cut", [3, 20, 60, 150, -4])
def test_truncated_params(tmp_path: Path, cut: int) -> None:
    data = ndarray_list(_good_params())
    path = _zip_tar(tmp_path, _members(data[:cut]))
    with pytest.raises(SageMakerModelError, match=r"bad\.tar\.gz!model_algo-1!params: .*truncated"):
        import_sagemaker_model(path)


def test_truncated_tarball(tmp_path: Path) -> None:
    good = _tar(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(SageMakerModelError, match=r"cut\.tar\.gz: not a readable tar\.gz archive"):
        import_sagemaker_model(cut)


def test_dtype_not_float32(tmp_path: Path) -> None:
    params = _good_params(**{"arg:v": np.zeros((FEATURE_DIM, NUM_FACTORS), np.float64)})
    with pytest.raises(
        SageMakerModelError, match=r"bad\.tar\.gz!model_algo-1: parameter 'v' is float64, expected float32"
    ):
        import_sagemaker_model(_zip_tar(tmp_path, _members(ndarray_list(params))))


def test_names_that_match_no_scheme_are_listed(tmp_path: Path) -> None:
    w0, w, v = _truth()
    params = {"arg:bias": np.array([w0], np.float32), "arg:w1_weight": w.reshape(-1, 1), "arg:v": v}
    with pytest.raises(SageMakerModelError) as error:
        import_sagemaker_model(_zip_tar(tmp_path, _members(ndarray_list(params))))
    message = str(error.value)
    assert "bad.tar.gz!model_algo-1" in message
    assert "no FM naming scheme of meta.json's FM model" in message
    assert "found: bias, v, w1_weight" in message
    assert "w0_weight" in message


def test_both_schemes_at_once_is_ambiguous(tmp_path: Path) -> None:
    params = {**fm_params(*_truth(), scheme="A"), **fm_params(*_truth(), scheme="B")}
    with pytest.raises(SageMakerModelError, match="both naming schemes"):
        import_sagemaker_model(_zip_tar(tmp_path, _members(ndarray_list(params))))


def test_shapes_that_do_not_match_meta_json(tmp_path: Path) -> None:
    members = _members(ndarray_list(_good_params()), meta_json(FEATURE_DIM + 1, NUM_FACTORS))
    with pytest.raises(SageMakerModelError, match=r"w1_weight has shape \(7, 1\), expected \(8, 1\)"):
        import_sagemaker_model(_zip_tar(tmp_path, members))
    members = _members(ndarray_list(_good_params()), meta_json(FEATURE_DIM, NUM_FACTORS + 1))
    with pytest.raises(SageMakerModelError, match=r"v has shape \(7, 3\), expected \(7, 4\) or \(4, 7\)"):
        import_sagemaker_model(_zip_tar(tmp_path, members, "bad2.tar.gz"))


def test_square_factors_are_ambiguous(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    params = fm_params(0.0, rng.normal(size=4).astype(np.float32), rng.normal(size=(4, 4)).astype(np.float32))
    with pytest.raises(SageMakerModelError, match=r"feature_dim == num_factors == 4.*cannot be told"):
        import_sagemaker_model(_zip_tar(tmp_path, _members(ndarray_list(params), meta_json(4, 4))))


def test_meta_json_problems(tmp_path: Path) -> None:
    params = ndarray_list(_good_params())
    with pytest.raises(SageMakerModelError, match=r"model_algo-1!meta\.json: not JSON"):
        import_sagemaker_model(_zip_tar(tmp_path, _members(params, b"{oops"), "a.tar.gz"))
    with pytest.raises(SageMakerModelError, match=r"meta\.json: no 'training_parameters' object"):
        import_sagemaker_model(_zip_tar(tmp_path, _members(params, b'{"version": 1}'), "b.tar.gz"))
    meta = json.dumps({"training_parameters": {"feature_dim": "7", "num_factors": "x"}}).encode()
    with pytest.raises(
        SageMakerModelError, match=r"training_parameters\.num_factors='x' is not a whole number"
    ):
        import_sagemaker_model(_zip_tar(tmp_path, _members(params, meta), "c.tar.gz"))


def test_zip_without_params(tmp_path: Path) -> None:
    path = _zip_tar(tmp_path, {"meta.json": meta_json(FEATURE_DIM, NUM_FACTORS), "symbol.json": b"{}"})
    with pytest.raises(SageMakerModelError, match=r"bad\.tar\.gz!model_algo-1: the ZIP has no params"):
        import_sagemaker_model(path)


def test_missing_model_algo_1_lists_what_is_there(tmp_path: Path) -> None:
    path = model_tar(tmp_path / "m.tar.gz", {"model_algo-2": b"x", "state_1": b""})
    with pytest.raises(
        SageMakerModelError,
        match=r"m\.tar\.gz: no model_algo-1 in the archive \(found: model_algo-2, state_1\)",
    ):
        import_sagemaker_model(path)


def test_not_a_tarball(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"PK\x03\x04 this is no tarball")
    with pytest.raises(SageMakerModelError, match=r"model\.tar\.gz: not a readable tar\.gz archive"):
        import_sagemaker_model(path)
    with pytest.raises(SageMakerModelError, match=r"absent\.tar\.gz: no such file"):
        import_sagemaker_model(tmp_path / "absent.tar.gz")


def test_a_plain_uncompressed_tar_is_read_too(tmp_path: Path) -> None:
    gz = _tar(tmp_path)
    with tarfile.open(gz) as source:
        data = {m.name: source.extractfile(m).read() for m in source.getmembers()}  # type: ignore[union-attr]
    plain = tmp_path / "model.tar"
    with tarfile.open(plain, "w") as archive:
        for name, payload in data.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    _assert_truth(import_sagemaker_model(plain))


# --- with a run's manifest -------------------------------------------------------------------------------


def _write_run(run: Path, feature_dim: int = FEATURE_DIM) -> Path:
    """A run with 3 users, 3 items and 1 category: feature_dim 7."""
    manifest = {
        "feature_dim": feature_dim,
        "blocks": {
            "users": {"offset": 0, "size": 3},
            "items": {"offset": 3, "size": 3},
            "categories": {"offset": 6, "size": 1},
        },
    }
    run.mkdir(parents=True)
    (run / contracts.RUN_MANIFEST_FILE).write_text(json.dumps(manifest))
    tables = {
        contracts.RUN_USER_MAP_DIR: {"user_idx": [0, 1, 2], "user_id": ["u0", "u1", "u2"]},
        contracts.RUN_ITEM_MAP_DIR: {
            "item_idx": [0, 1, 2],
            "item_id": ["a", "b", "c"],
            "categories": ["X", "", "X"],
        },
        contracts.RUN_CATEGORY_MAP_DIR: {"category_idx": [0], "category": ["X"]},
    }
    for folder, table in tables.items():
        (run / folder).mkdir()
        pq.write_table(pa.table(table), run / folder / "part-0.parquet")
    return run / contracts.RUN_MANIFEST_FILE


def test_the_manifest_attaches_the_runs_layout(tmp_path: Path) -> None:
    manifest = _write_run(tmp_path / "run")
    model = import_sagemaker_model(_tar(tmp_path, "B"), manifest=manifest)
    _assert_truth(model)
    assert model.layout is not None
    assert list(model.layout.item_ids) == ["a", "b", "c"]
    assert list(model.layout.item_category_indptr) == [0, 1, 1, 2]
    # the run folder works as well as its manifest.json
    assert import_sagemaker_model(_tar(tmp_path, "A"), manifest=manifest.parent).layout is not None


def test_a_manifest_of_another_feature_dim_is_refused(tmp_path: Path) -> None:
    manifest = _write_run(tmp_path / "run", feature_dim=8)
    with pytest.raises(SageMakerModelError, match=r"model has feature_dim 7, but .*manifest\.json has 8"):
        import_sagemaker_model(_tar(tmp_path), manifest=manifest)


# --- the command ---------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recsys fm")
    cli_import.register(parser.add_subparsers(dest="fm_command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_the_command_writes_a_loadable_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _write_run(tmp_path / "run")
    out = tmp_path / "out" / "model.npz"
    code = _cli(
        ["import-sagemaker-model", str(_tar(tmp_path, "B")), "--manifest", str(manifest), "--out", str(out)]
    )
    assert code == 0
    assert "feature_dim 7, num_factors 3, with the run's layout" in capsys.readouterr().out
    loaded = FmModel.load(out)
    _assert_truth(loaded)
    assert loaded.layout is not None
    assert list(loaded.layout.user_ids) == ["u0", "u1", "u2"]
    assert not list(out.parent.glob("*.partial"))


def test_the_command_reports_bad_input_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "junk.tar.gz"
    bad.write_bytes(b"\x1f\x8b junk")
    out = tmp_path / "model.npz"
    assert _cli(["import-sagemaker-model", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("import-sagemaker-model: ")
    assert "junk.tar.gz: not a readable tar.gz archive" in err
    assert not out.exists()
