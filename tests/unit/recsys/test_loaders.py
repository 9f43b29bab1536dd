"""Loaders: every format lands in the one `Interactions` representation; errors name file and line.

ml-100k may not be redistributed, so its tests write a few fake lines in its format.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recsys.loaders import LoadError, detect_file, load_interactions, resolve
from recsys.synth import SynthConfig, synthesize

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t377\t5\t881251000\n"
FLAGS_KOLYA = "|".join("1" if i == 5 else "0" for i in range(19))  # Comedy
FLAGS_LA = "|".join("1" if i in (6, 10, 16) else "0" for i in range(19))  # Crime, Film-Noir, Thriller
FLAGS_NONE = "|".join("0" for _ in range(19))
U_ITEM = (
    f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{FLAGS_KOLYA}\n"
    f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{FLAGS_LA}\n"
    f"377|Misérables, Les (1995)|01-Jan-1995||http://x|{FLAGS_KOLYA}\n"
    f"999|Unrated Film (1994)|01-Jan-1994||http://x|{FLAGS_NONE}\n"
)


def _ml100k(directory: Path, *, genre: str | None = None, data: str = U_DATA) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "u.data").write_text(data, encoding="ascii")
    (directory / "u.item").write_bytes(U_ITEM.encode("latin-1"))
    if genre is not None:
        (directory / "u.genre").write_bytes(genre.encode("latin-1"))
    return directory


def test_ml100k_directory_with_latin1_titles_and_genre_flags(tmp_path: Path) -> None:
    data = load_interactions(_ml100k(tmp_path))
    assert data.user_ids.tolist() == ["196", "186", "22"]  # first-seen order
    assert data.user.tolist() == [0, 1, 2, 0]
    assert data.item_ids.tolist() == ["242", "302", "377", "999"]  # 999 is catalog-only, appended
    assert data.item.tolist() == [0, 1, 2, 2]
    assert data.user.dtype == np.int32
    assert data.item.dtype == np.int32
    assert data.timestamp.dtype == np.int64
    assert data.timestamp[0] == 881250949
    assert data.rating.dtype == np.float32
    assert data.rating.tolist() == [3.0, 3.0, 1.0, 5.0]
    assert data.catalog is not None
    assert data.catalog.titles.tolist()[2] == "Misérables, Les (1995)"
    assert data.catalog.categories.tolist() == [
        "Comedy",
        "Crime|Film-Noir|Thriller",
        "Comedy",
        "",
    ]


def test_ml100k_genre_names_come_from_u_genre(tmp_path: Path) -> None:
    names = [f"G{i}" for i in range(19)]
    genre = "".join(f"{n}|{i}\n" for i, n in enumerate(names)) + "\n"
    data = load_interactions(_ml100k(tmp_path, genre=genre))
    assert data.catalog is not None
    assert data.catalog.categories.tolist()[:2] == ["G5", "G6|G10|G16"]


def test_u_data_file_alone_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "ratings.tsv"
    path.write_bytes(b"1\t10\t4\t100\r\n\r\n2\t10\t2\t200\r\n")
    data = load_interactions(path)
    assert len(data) == 2
    assert data.catalog is None
    assert data.item_ids.tolist() == ["10"]


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("1\t2\t3\t4\n5\t6\t7\t8\n9\t10\t11\n", 3, "expected 4 tab-separated fields, found 3"),
        ("1\t2\t3\t4\n\n5\t6\tfour\t8\n", 3, "column rating: expected an integer rating, got 'four'"),
        ("1\t2\t3\t4\n5\t6\t7\t8\t9\n", 2, "found 5"),
        ("1\t2\t3\t4\n5\t\t7\t8\n", 2, "column item"),
    ],
)
def test_malformed_u_data_names_file_and_line(tmp_path: Path, content: str, line: int, needle: str) -> None:
    path = tmp_path / "u.data"
    path.write_text(content)
    with pytest.raises(LoadError, match=needle) as caught:
        load_interactions(path, fmt="ml-100k")
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert caught.value.line == line
    assert caught.value.path == path


def test_malformed_u_item_flag_names_line(tmp_path: Path) -> None:
    _ml100k(tmp_path)
    bad = U_ITEM.splitlines()[1].rsplit("|", 1)[0] + "|2"
    (tmp_path / "u.item").write_bytes((U_ITEM.splitlines()[0] + "\n" + bad + "\n").encode("latin-1"))
    with pytest.raises(LoadError, match=r"u\.item:2: column genre_18: expected 0 or 1"):
        load_interactions(tmp_path)


def test_missing_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(LoadError, match=re.escape(f"{missing}: file not found")):
        load_interactions(missing)
    (tmp_path / "u.data").write_text(U_DATA)
    with pytest.raises(LoadError, match=re.escape(f"{tmp_path / 'items.csv'}: file not found")):
        load_interactions(tmp_path / "u.data", items=tmp_path / "items.csv")
    with pytest.raises(LoadError, match=r"expected transactions\.csv \(canonical\)"):
        load_interactions(tmp_path, fmt="canonical")
    with pytest.raises(LoadError, match="unknown format 'parquet'"):
        load_interactions(tmp_path, fmt="parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoadError, match="tried formats: movielens, ml-100k, canonical") as caught:
        load_interactions(empty)
    assert str(caught.value).startswith(f"{empty}:")


@pytest.mark.parametrize(
    ("files", "fmt", "ratings", "items"),
    [
        (["ratings.csv", "movies.csv", "tags.csv"], "movielens", "ratings.csv", "movies.csv"),
        (["u.data", "u.item", "u.genre"], "ml-100k", "u.data", "u.item"),
        (["transactions.csv", "catalog.csv"], "canonical", "transactions.csv", "catalog.csv"),
        (["transactions.csv"], "canonical", "transactions.csv", None),
    ],
)
def test_directory_detection(
    tmp_path: Path, files: list[str], fmt: str, ratings: str, items: str | None
) -> None:
    for name in files:
        (tmp_path / name).write_text("x\n")
    source = resolve(tmp_path)
    assert source.fmt == fmt
    assert source.ratings == tmp_path / ratings
    assert source.items == (None if items is None else tmp_path / items)
    assert source.items_ml100k == (fmt == "ml-100k")


@pytest.mark.parametrize(
    ("first_line", "fmt"),
    [
        ("1\t2\t3\t881250949", "ml-100k"),
        ("\ufeffuserId,movieId,rating,timestamp", "movielens"),
        ("USER_ID,item_id,timestamp,event_type", "canonical"),
        ("customer,itemId,timestamp", None),
        ("hello world", None),
        ("", None),
    ],
)
def test_file_detection(tmp_path: Path, first_line: str, fmt: str | None) -> None:
    path = tmp_path / "events"
    path.write_text(first_line + "\r\n" if first_line else "", encoding="utf-8")
    if fmt is None:
        with pytest.raises(LoadError, match="tried formats: movielens, ml-100k, canonical") as caught:
            detect_file(path)
        assert str(path) in str(caught.value)
    else:
        assert detect_file(path) == fmt


def test_movielens_sample(sample_dir: Path) -> None:
    data = load_interactions(sample_dir)
    assert len(data) == 100_836
    assert data.n_users == 610
    assert data.n_items == 9_742
    assert len(np.unique(data.item)) == 9_724
    assert data.item.max() == 9_723  # rated items come first, catalog-only ones after
    assert set(np.unique(data.rating).tolist()) == {v / 2 for v in range(1, 11)}
    assert data.timestamp[0] == 964982703
    assert data.catalog is not None
    titles = dict(zip(data.item_ids.tolist(), data.catalog.titles.tolist(), strict=True))
    assert titles["11"] == "American President, The (1995)"
    genres = dict(zip(data.item_ids.tolist(), data.catalog.categories.tolist(), strict=True))
    assert genres["1"] == "Adventure|Animation|Children|Comedy|Fantasy"
    explicit = load_interactions(sample_dir / "ratings.csv", sample_dir / "movies.csv", fmt="movielens")
    assert np.array_equal(explicit.item, data.item)
    assert load_interactions(sample_dir / "ratings.csv").catalog is None  # a file: no sibling lookup


def test_canonical_with_iso_timestamps_missing_ratings_and_partial_catalog(tmp_path: Path) -> None:
    (tmp_path / "transactions.csv").write_text(
        "item_id,user_id,timestamp,event_type\n"
        "sku-1,alice,2020-01-01T00:00:00Z,purchase\n"
        "sku-2,bob,1577836861,view\n"
        "sku-1,bob,2020-01-01T00:01:02+00:00,view\n"
    )
    (tmp_path / "catalog.csv").write_text(
        'item_id,title,brand\nsku-3,"Socks, wool",acme\nsku-1,Hat,acme\n', encoding="utf-8"
    )
    data = load_interactions(tmp_path)
    assert data.user_ids.tolist() == ["alice", "bob"]
    assert data.item_ids.tolist() == ["sku-1", "sku-2", "sku-3"]
    assert data.timestamp.tolist() == [1577836800, 1577836861, 1577836862]
    assert np.isnan(data.rating).all()
    assert not data.has_ratings
    assert data.catalog is not None
    assert data.catalog.titles.tolist() == ["Hat", "", "Socks, wool"]
    assert data.catalog.categories.tolist() == ["", "", ""]


def test_invalid_csv_row_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text("user_id,item_id,timestamp,rating\nu1,i1,100,4\nu2,i2,not-a-time,3\n")
    with pytest.raises(LoadError) as caught:
        load_interactions(path)
    assert str(caught.value).startswith(f"{path}:3:")
    assert caught.value.line == 3
    header_only = tmp_path / "only" / "transactions.csv"
    header_only.parent.mkdir()
    header_only.write_text("user_id,item_id,timestamp\n")
    with pytest.raises(LoadError, match=r"header only|no interactions") as caught:
        load_interactions(header_only)
    assert str(caught.value).startswith(str(header_only))


def test_synthetic_output_loads_as_canonical(tmp_path: Path) -> None:
    config = SynthConfig(users=50, items=40, interactions=1_000, seed=2)
    synthesize(tmp_path, config)
    data = load_interactions(tmp_path)
    assert resolve(tmp_path).fmt == "canonical"
    assert (len(data), data.n_users, data.n_items) == (1_000, 50, 40)
    assert data.catalog is not None
    assert any("," in t for t in data.catalog.titles)
