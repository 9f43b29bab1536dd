"""Fold-in on item vectors: the user vector, the scores, the best items with ties broken by id."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.serving.foldin import ItemVectors
from recsys.serving.model_files import ModelFormatError
from tests.unit.recsys.serving.helpers import npz_bytes

VECTORS = {"a": ([1.0, 0.0], 0.5), "b": ([0.0, 2.0], 0.0), "c": ([1.0, 1.0], -1.0), "d": ([0.0, 2.0], 0.0)}


def vectors() -> ItemVectors:
    return ItemVectors.from_npz(npz_bytes(VECTORS), "test.npz")


def test_the_user_vector_is_the_mean_of_consumed_items() -> None:
    v = vectors()
    scores = v.scores(["a", "c", "unknown"])  # u = mean((1, 0), (1, 1)) = (1, .5)
    assert scores.tolist() == pytest.approx([1.5, 1.0, 0.5, 1.0])  # u·f + bias
    assert v.scores(["unknown"]) is None


def test_best_excludes_items_and_breaks_ties_by_id() -> None:
    v = vectors()
    scores = v.scores(["b"])  # u = (0, 2): b and d tie at 4
    assert v.best(scores, 2, exclude=set()) == [("b", 4.0), ("d", 4.0)]
    assert v.best(scores, 2, exclude={"b"}) == [("d", 4.0), ("c", 1.0)]
    assert v.best(scores, 10, exclude={"a", "b", "c", "d"}) == []
    assert v.score_of(scores, "c") == pytest.approx(1.0)
    assert v.score_of(scores, "nope") is None


def test_ties_at_the_cut_are_resolved_by_id_not_by_position() -> None:
    ids = [f"i{n:02d}" for n in range(20)][::-1]  # stored in reverse id order
    v = ItemVectors(ids, np.ones((20, 1), dtype=np.float32), np.zeros(20, dtype=np.float32))
    assert [i for i, _ in v.best(v.scores(["i00"]), 3, exclude=set())] == ["i00", "i01", "i02"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a readable .npz"),
        (b"", "not a readable .npz"),
    ],
)
def test_unreadable_vectors_name_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ModelFormatError, match=f"test.npz: {message}"):
        ItemVectors.from_npz(data, "test.npz")


def test_vectors_with_wrong_shapes_are_refused() -> None:
    import io

    out = io.BytesIO()
    np.savez(
        out, item_ids=np.array(["a", "b"]), factors=np.ones((3, 2), np.float32), bias=np.zeros(2, np.float32)
    )
    with pytest.raises(ModelFormatError, match="expected item_ids"):
        ItemVectors.from_npz(out.getvalue(), "test.npz")
    out = io.BytesIO()
    np.savez(
        out, item_ids=np.array(["a"]), factors=np.array([[np.nan]], np.float32), bias=np.zeros(1, np.float32)
    )
    with pytest.raises(ModelFormatError, match="finite"):
        ItemVectors.from_npz(out.getvalue(), "test.npz")
    out = io.BytesIO()
    np.savez(out, item_ids=np.array(["a"]), factors=np.ones((1, 1), np.float32))
    with pytest.raises(ModelFormatError, match="missing array"):
        ItemVectors.from_npz(out.getvalue(), "test.npz")
