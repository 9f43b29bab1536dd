"""Index files: DSSTNE's loader rules (TestNetCDFhelper.cpp), first-seen numbering, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.dsstne.indexes import Index, IndexFileError, load_index, load_or_new, save_index


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "index"
    path.write_bytes(text.encode())
    return path


def test_new_labels_get_indices_in_first_seen_order() -> None:
    index = Index()
    assert [index.add(label) for label in ["2", "29", "32", "2", "47"]] == [0, 1, 2, 0, 3]
    assert len(index) == 4
    assert index.size == 4
    assert index.labels() == ["2", "29", "32", "47"]
    assert index.get("32") == 2
    assert index.get("nope") is None


def test_save_and_load_round_trip_in_index_order(tmp_path: Path) -> None:
    index = Index([("b", 1), ("a", 0), ("c", 2)])
    path = tmp_path / "features"
    save_index(path, index)
    assert path.read_text() == "a\t0\nb\t1\nc\t2\n"
    assert dict(load_index(path).items()) == {"a": 0, "b": 1, "c": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["features"]  # no temporary file left behind


def test_loader_accepts_arbitrary_line_order_crlf_and_blank_lines(tmp_path: Path) -> None:
    index = load_index(_write(tmp_path, "110510\t2\r\n\n2\t0\n29\t1"))
    assert dict(index.items()) == {"110510": 2, "2": 0, "29": 1}
    assert index.add("new") == 3


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a\t0\na\t1\n", 2, "duplicate label 'a'"),
        ("a\t0\nb\t0\n", 2, "duplicate index 0"),
        ("a\t0\n\t1\n", 2, "missing label"),
        ("a\t0\nb 1\n", 2, "missing TAB"),
        ("a\t0\nb\t1\tx\n", 2, "2 TABs"),
        ("a\tzero\n", 1, "not an unsigned decimal"),
        ("a\t-1\n", 1, "not an unsigned decimal"),
        ("a\t4294967296\n", 1, "does not fit"),
    ],
)
def test_malformed_index_files_name_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(IndexFileError, match=reason) as info:
        load_index(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_a_file_with_gaps_never_reuses_an_index(tmp_path: Path) -> None:
    index = load_index(_write(tmp_path, "a\t0\nb\t2\n"))
    assert index.size == 3
    assert index.add("c") == 3
    assert index.labels() == ["a", None, "b", "c"]


def test_labels_that_would_break_the_file_are_refused() -> None:
    index = Index()
    for bad in ["", "a\tb", "a\nb"]:
        with pytest.raises(ValueError, match="cannot be stored"):
            index.add(bad)


def test_load_or_new(tmp_path: Path) -> None:
    index, existed = load_or_new(tmp_path / "missing")
    assert (len(index), existed) == (0, False)
    index, existed = load_or_new(_write(tmp_path, "x\t0\n"))
    assert (dict(index.items()), existed) == ({"x": 0}, True)
