"""`recsys dsstne generate-netcdf`: DSSTNE's generateNetCDF flags, text format and index semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.cli.main import main
from recsys.interactions import Interactions
from training.dsstne.datasets import read_netcdf
from training.dsstne.generate import (
    FeatureMode,
    GenerateError,
    generate_netcdf,
    interactions_to_lines,
    parse_line,
    write_interactions_text,
)
from training.dsstne.indexes import load_index

USERGUIDE_TEXT = (
    "Example1\tFeature1:Feature2:Feature3\n"
    "Example2\tFeature4:Feature2:Feature5\n"
    "Example3\tFeature6:Feature7:Feature8\n"
)


def _run(tmp_path: Path, text: str | None, *flags: str, name: str = "gl_input") -> tuple[int, Path]:
    """generate-netcdf on `text` (written to in.txt unless None) with the usual file names in tmp_path."""
    source = tmp_path / "in.txt"
    if text is not None:
        source.write_text(text)
    out = tmp_path / f"{name}.nc"
    argv = ["dsstne", "generate-netcdf", "-d", name, "-i", str(source), "-o", str(out)]
    argv += ["-f", str(tmp_path / "features"), "-s", str(tmp_path / "samples"), *flags]
    return main(argv), out


def test_userguide_example_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, USERGUIDE_TEXT, "-c", name="indicators")
    assert code == 0, capsys.readouterr().err
    (ds,) = read_netcdf(out)
    assert (ds.name, ds.width, ds.attributes, ds.data_type) == ("indicators", 128, 3, 0)
    assert ds.start.tolist() == [0, 3, 6]
    assert ds.end.tolist() == [3, 6, 9]
    assert ds.index.tolist() == [0, 1, 2, 3, 1, 4, 5, 6, 7]
    features = load_index(tmp_path / "features")
    assert [features[f"Feature{i}"] for i in range(1, 9)] == list(range(8))
    assert dict(load_index(tmp_path / "samples").items()) == {"Example1": 0, "Example2": 1, "Example3": 2}
    assert "3 samples, 9 entries, width 128" in capsys.readouterr().out


def test_analog_keeps_values_and_indicator_drops_them(tmp_path: Path) -> None:
    text = "u1\t10,5:20,1.5\nu2\t20,2:30\n"
    code, out = _run(tmp_path, text, "-c", "-t", "analog")
    assert code == 0
    (ds,) = read_netcdf(out)
    assert (ds.attributes, ds.data_type) == (1, 4)
    assert ds.values is not None
    assert ds.values.tolist() == [5.0, 1.5, 2.0, 0.0]
    code, out = _run(tmp_path, text, "-c", "-t", "indicator")
    (ds,) = read_netcdf(out)
    assert ds.values is None
    assert ds.attributes == 3


def test_a_folder_as_input_reads_its_files_sorted_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "b.txt").write_text("u2\tc:a\n")
    (folder / "a.txt").write_text("u1\ta:b\n")
    (folder / "nested").mkdir()  # not read: generateNetCDF is not recursive
    (folder / "nested" / "z.txt").write_text("u9\tz\n")
    argv = ["dsstne", "generate-netcdf", "-d", "d", "-i", str(folder), "-o", str(tmp_path / "o.nc")]
    assert main([*argv, "-f", str(tmp_path / "f"), "-s", str(tmp_path / "s"), "-c"]) == 0
    assert dict(load_index(tmp_path / "f").items()) == {"a": 0, "b": 1, "c": 2}
    assert dict(load_index(tmp_path / "s").items()) == {"u1": 0, "u2": 1}
    (ds,) = read_netcdf(tmp_path / "o.nc")
    assert ds.index.tolist() == [0, 1, 2, 0]


def test_sample_index_is_reused_so_input_and_output_rows_align(tmp_path: Path) -> None:
    code, _ = _run(tmp_path, "u1\ta:b\nu2\tb:c\nu3\tc\n", "-c", name="gl_input")
    assert code == 0
    # The output file lists users in another order and adds a new one; rows follow the shared index.
    second = tmp_path / "out.txt"
    second.write_text("u3\tx\nu4\ty\nu1\tz:x\n")
    result = generate_netcdf(
        "gl_output",
        second,
        tmp_path / "gl_output.nc",
        tmp_path / "features_output",
        tmp_path / "samples",
        mode=FeatureMode.CREATE,
    )
    assert result.samples == ["u1", "u3", "u4"]  # ascending sample index, only samples of this input
    assert dict(load_index(tmp_path / "samples").items()) == {"u1": 0, "u2": 1, "u3": 2, "u4": 3}
    (ds,) = read_netcdf(tmp_path / "gl_output.nc")
    assert ds.to_csr()[0].tolist() == [0, 2, 3, 4]
    assert ds.index.tolist() == [2, 0, 0, 1]  # z, x | x | y  (features in first-seen order x, y, z)


def test_fixed_index_drops_unknown_features_and_merge_extends_it(tmp_path: Path) -> None:
    (tmp_path / "features").write_text("a\t0\nb\t1\n")
    code, out = _run(tmp_path, "u1\ta:zz:b\nu2\tzz\n")
    assert code == 0
    (ds,) = read_netcdf(out)
    assert ds.index.tolist() == [0, 1]
    assert ds.to_csr()[0].tolist() == [0, 2, 2]  # a sample whose features are all unknown keeps its row
    assert (tmp_path / "features").read_text() == "a\t0\nb\t1\n"  # untouched without -c/-m
    code, out = _run(tmp_path, "u1\ta:zz:b\n", "-m")
    assert code == 0
    assert (tmp_path / "features").read_text() == "a\t0\nb\t1\nzz\t2\n"


def test_fixed_mode_needs_an_existing_feature_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(tmp_path, "u1\ta\n")
    assert code == 1
    assert "feature index not found" in capsys.readouterr().err
    assert not out.exists()


def test_create_and_merge_together_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, "u1\ta\n", "-c", "-m")
    assert info.value.code == 2


def test_malformed_lines_are_reported_with_file_and_line_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "samples").write_text("u0\t0\n")
    text = "u1\ta,1:b\n\tc\nu3\ta,x\nu4\ta\tb\nu5\ta\n"
    code, out = _run(tmp_path, text, "-c")
    assert code == 1
    err = capsys.readouterr().err
    source = tmp_path / "in.txt"
    assert f"{source}:2: empty sample name" in err
    assert f"{source}:3: feature 'a': value 'x' is not a number" in err
    assert f"{source}:4: a TAB inside the feature list" in err
    assert "3 malformed line(s); nothing written" in err
    assert not out.exists()
    assert not (tmp_path / "features").exists()
    assert (tmp_path / "samples").read_text() == "u0\t0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "samples"]  # no temporary files


def test_invalid_utf8_is_a_malformed_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.txt").write_bytes(b"u1\ta\nu2\t\xff\n")
    code, _ = _run(tmp_path, None, "-c")
    assert code == 1
    assert f"{tmp_path / 'in.txt'}:2: not valid UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "\n\n", "no tab here\n"])
def test_empty_input_is_an_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, text, "-c")
    assert code == 1
    assert "empty input" in capsys.readouterr().err
    assert not out.exists()


def test_duplicate_label_in_the_feature_index_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "features").write_text("a\t0\nb\t1\na\t2\n")
    code, out = _run(tmp_path, "u1\ta\n", "-m")
    assert code == 1
    assert f"{tmp_path / 'features'}:3: duplicate label 'a'" in capsys.readouterr().err
    assert not out.exists()


def test_dsstne_leniencies_lines_without_tab_repeated_samples_and_extra_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "header line\nu1\ta:b\r\nu2\tc,1,2::,5:d\nu1\te\n"
    code, out = _run(tmp_path, text, "-c", "-t", "analog")
    assert code == 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in.txt'}:1: warning: no TAB" in err
    assert "warning: feature 'c' has 2 values; the first is kept" in err
    (ds,) = read_netcdf(out)
    features = load_index(tmp_path / "features")
    assert features.labels() == ["a", "b", "c", "d", "e"]  # "b\r" is "b": CRLF input works
    # u1's second line replaces its first (its features still got indices when first seen).
    assert ds.to_csr()[0].tolist() == [0, 1, 3]
    assert ds.index.tolist() == [4, 2, 3]
    assert ds.values is not None
    assert ds.values.tolist() == [0.0, 1.0, 0.0]


def test_parse_line() -> None:
    assert parse_line("s\ta,1.5:b") == ("s", ["a", "b"], [1.5, 0.0], [])
    assert parse_line("s\t") == ("s", [], [], [])
    assert parse_line("") is None


def test_generate_refuses_a_missing_input(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="no such input"):
        generate_netcdf("d", tmp_path / "nope", tmp_path / "o.nc", tmp_path / "f", tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenerateError, match="holds no files"):
        generate_netcdf("d", tmp_path / "empty", tmp_path / "o.nc", tmp_path / "f", tmp_path / "s")


def _interactions() -> Interactions:
    return Interactions(
        user=np.array([1, 0, 1, 0], dtype=np.int32),
        item=np.array([0, 1, 2, 0], dtype=np.int32),
        timestamp=np.array([100, 200, 300, 400], dtype=np.int64),
        rating=np.array([4.5, np.nan, 3.0, 5.0], dtype=np.float32),
        user_ids=np.array(["u0", "u1", "u-unseen"], dtype=object),
        item_ids=np.array(["m10", "m20", "m30"], dtype=object),
    )


def test_interactions_become_dsstne_lines_users_as_samples(tmp_path: Path) -> None:
    data = _interactions()
    assert list(interactions_to_lines(data)) == ["u0\tm20,200:m10,400\n", "u1\tm10,100:m30,300\n"]
    assert list(interactions_to_lines(data, value="rating")) == ["u0\tm20:m10,5\n", "u1\tm10,4.5:m30,3\n"]
    assert list(interactions_to_lines(data, value="none")) == ["u0\tm20:m10\n", "u1\tm10:m30\n"]
    path = tmp_path / "ratings"
    assert write_interactions_text(path, data) == 2
    result = generate_netcdf(
        "gl_input", path, tmp_path / "gl.nc", tmp_path / "f", tmp_path / "s", mode=FeatureMode.CREATE
    )
    assert result.samples == ["u0", "u1"]
    assert load_index(tmp_path / "f").labels() == ["m20", "m10", "m30"]


def test_ids_that_break_the_text_format_are_refused() -> None:
    data = _interactions()
    bad = Interactions(
        user=data.user,
        item=data.item,
        timestamp=data.timestamp,
        rating=data.rating,
        user_ids=data.user_ids,
        item_ids=np.array(["m10", "m:20", "m30"], dtype=object),
    )
    with pytest.raises(ValueError, match="item id 'm:20'"):
        list(interactions_to_lines(bad))
