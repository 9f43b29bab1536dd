"""The run's maps: built on the driver (small maps) and distributed (large ones), the same rows either way.

The distributed path is forced with `driver_max=0`. Run A starts the maps; run B extends A's with new
users and items, a catalog that changed (a new title, a dropped row, a repeated row whose later arrival
wins) and ids whose order differs between bytes and other collations.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from glue import driver_maps
from glue import spark_hash as sh
from glue.indexing import ids_in_index_order, numbering_order
from glue.maps import build_maps
from glue.outputs import PreviousMaps, RunLayout
from glue.pipeline import _quality
from glue.readers import Inputs
from glue.transforms import PLACEHOLDER_TITLE, id_census, normalise_transactions
from recsys import contracts
from tests.spark.helpers import CAT_SCHEMA, tx

ROWS_A = [
    ("u1", "i1", 10, 5.0),
    ("u2", "i1", 11, 3.0),
    ("u2", "ghost", 12, 4.0),  # no catalog row
    ("Zed", "i2", 13, 1.0),
    (None, "i9", 14, 1.0),  # incomplete: i9 is not an id of this run
    ("u3", "i3", None, 1.0),  # incomplete: neither u3 nor i3
]
ROWS_B = [
    *ROWS_A,
    ("é", "i1", 20, 5.0),
    ("z", "fresh", 21, 5.0),
    ("ß", "i2", 22, 2.0),
    ("\U0001f600", "ghost", 23, 4.0),
    ("u,1", "i\t4", 24, 4.0),
]
CATALOG_A = [
    ("i1", "One", "Drama|Comedy"),
    ("i2", "Two", ""),
    ("old", "Old only", "Horror"),  # catalog item without interactions
    ("gone", "Gone later", "Drama"),  # dropped from run B's catalog: keeps A's columns
]
CATALOG_B = [
    ("i1", "One (renamed)", "Drama"),
    ("i2", "Two", ""),
    ("old", "Old only", "Horror"),
    ("i\t4", None, None),  # null title and categories
    ("new", "New", "Sci-Fi"),
]


def _catalog(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    full = [(i, t, c, "{}", "2024-01-01", "catalog/c.csv", n + 2) for n, (i, t, c) in enumerate(rows)]
    full.append(("i2", "Two, resent", "Drama", '{"k":1}', "2024-01-02", "catalog/d.csv", 2))  # later arrival
    return spark.createDataFrame(full, CAT_SCHEMA)


def _maps(
    spark: Any,
    out: str,
    run: str,
    rows: list[Any],
    catalog: list[Any] | None,
    previous: Any,
    driver_max: int | None,
) -> Any:
    source = Inputs(tx(spark, rows), _catalog(spark, catalog) if catalog else None, ())
    census = id_census(normalise_transactions(source.transactions)).persist()
    _, seen = _quality(census)
    sizes = {}
    if previous is not None:
        sizes = {"users": previous.users.count(), "items": previous.items.count()}
    maps = build_maps(census, seen, source, previous, sizes, RunLayout(out, run), driver_max=driver_max)
    census.unpersist()
    return maps


def _rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def _previous(spark: Any, out: str, run: str) -> PreviousMaps:
    layout = RunLayout(out, run)
    return PreviousMaps(
        run_root=layout.root,
        users=spark.read.parquet(layout.path(contracts.RUN_USER_MAP_DIR)),
        items=spark.read.parquet(layout.path(contracts.RUN_ITEM_MAP_DIR)),
        categories=None,
    )


@pytest.mark.parametrize("with_catalog", [True, False])
def test_driver_and_distributed_maps_agree_row_for_row(spark, tmp_path, with_catalog) -> None:
    results = {}
    for name, driver_max in (("driver", None), ("spread", 0)):
        out = str(tmp_path / name)
        a = _maps(spark, out, "A", ROWS_A, CATALOG_A if with_catalog else None, None, driver_max)
        b = _maps(
            spark,
            out,
            "B",
            ROWS_B,
            CATALOG_B if with_catalog else None,
            _previous(spark, out, "A"),
            driver_max,
        )
        assert (a.tables is not None, b.tables is not None) == (name == "driver", name == "driver")
        results[name] = [(_rows(m.users), _rows(m.items), m.sizes) for m in (a, b)]
        assert [list(m.users.columns) for m in (a, b)] == [["user_idx", "user_id", "is_new"]] * 2
        assert list(b.items.columns) == [
            "item_idx",
            "item_id",
            "title",
            "categories",
            "attributes",
            "in_catalog",
            "is_new",
        ]
    assert results["driver"] == results["spread"]
    users_b, items_b, sizes_b = results["driver"][1]
    assert sizes_b == {"user_id": len(users_b), "item_id": len(items_b)}
    by_id = {row[1]: row for row in items_b}
    if with_catalog:
        assert by_id["i1"][2:4] == ("One (renamed)", "Drama")  # this run's catalog wins
        assert by_id["i2"][2:5] == ("Two, resent", "Drama", '{"k":1}')  # the later arrival
        assert by_id["gone"][2:6] == ("Gone later", "Drama", "{}", True)  # only A listed it
        assert by_id["i\t4"][2:4] == ("", "")
    assert by_id["ghost"][2] == PLACEHOLDER_TITLE
    assert by_id["ghost"][5] is False
    assert "i9" not in by_id
    assert "u3" not in {row[1] for row in users_b}


def test_a_catalog_larger_than_the_driver_limit_goes_the_distributed_way(spark, tmp_path) -> None:
    catalog = [(f"c{k}", "t", "") for k in range(6)]
    small = _maps(spark, str(tmp_path / "a"), "A", ROWS_A, catalog, None, driver_max=10)
    large = _maps(spark, str(tmp_path / "b"), "A", ROWS_A, catalog, None, driver_max=5)  # 7 catalog rows
    assert small.tables is not None
    assert large.tables is None
    assert _rows(small.items) == _rows(large.items)
    assert small.ids() is not None
    assert large.ids() is not None
    assert small.ids()["item_id"].equals(large.ids()["item_id"])


def test_new_ids_are_numbered_by_bucket_then_bytes() -> None:
    ids = pa.array(["b", "a", "é", "z", "Z", "\U0001f600", "a,b"], pa.string())
    order = numbering_order(ids)
    buckets = sh.pmod(sh.hash_strings(ids), 1024)
    keys = [(int(buckets[k]), ids[k].as_py().encode()) for k in order]
    assert keys == sorted(keys)
    assert sorted(order.tolist()) == list(range(len(ids)))


def test_extend_keeps_every_old_entry_and_numbers_only_new_ids() -> None:
    previous = pa.table({"id": ["x", "y", "gone"], "idx": pa.array([2, 0, 1], pa.int64())})
    table = driver_maps.extend(previous, pa.array(["y", None, "n2", "n1", "n2"]), "id", "idx")
    assert table.column("idx").to_pylist() == [0, 1, 2, 3, 4]
    assert table.column("id").to_pylist()[:3] == ["y", "gone", "x"]
    assert set(table.column("id").to_pylist()[3:]) == {"n1", "n2"}
    assert table.column("is_new").to_pylist() == [False, False, False, True, True]
    fresh = driver_maps.extend(None, pa.array(["b", "a"]), "id", "idx")
    assert fresh.column("idx").to_pylist() == [0, 1]
    assert all(fresh.column("is_new").to_pylist())


def test_ids_by_index_refuses_a_map_out_of_order() -> None:
    table = pa.table({"id": ["a", "b"], "idx": pa.array([1, 0], pa.int64())})
    with pytest.raises(ValueError, match="not 0"):
        ids_in_index_order(table, "id", "idx")
