"""The answers against an embedded AWS: sources, seen-item filtering, fold-in, fallbacks, caching."""

from __future__ import annotations

from typing import Any

import pytest

from recsys.serving.runtime import build_runtime
from recsys.serving.validation import NotFoundError, UnavailableError
from tests.unit.recsys.serving.fixtures import Aws
from tests.unit.recsys.serving.helpers import ARTIFACTS, put_catalog, put_event, write_model_folder

TRAINED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the folders' created_at
AFTER = TRAINED_MS + 60_000
BEFORE = TRAINED_MS - 60_000
RECS = {"u1": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "u2": [("c", 5.0), ("a", 5.0), ("b", 5.0)]}
POPULAR = [("p1", 100.0), ("a", 90.0), ("p2", 80.0), ("p3", 70.0)]
# x is what u1 consumes after training: close to b and d, far from a.
VECTORS = {
    "a": ([1.0, 0.0], 0.0),
    "b": ([0.0, 1.0], 0.0),
    "c": ([0.1, 0.1], 0.0),
    "d": ([0.0, 0.9], 0.0),
    "x": ([0.0, 1.0], 0.0),
    "p1": ([0.5, 0.0], 0.0),
}


def publish(aws: Aws, version: str = "v1", vectors: Any = VECTORS, **kwargs: Any) -> None:
    folder = write_model_folder(
        aws.tmp_path / version,
        version=version,
        recommendations=kwargs.pop("recommendations", RECS),
        popularity=POPULAR,
        similar={"a": [("b", 0.5), ("a", 0.9), ("c", 0.5)]},
        vectors=vectors,
        **kwargs,
    )
    aws.publish(folder)


def ids(answer: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in answer["items"]]


def test_a_known_user_gets_the_precomputed_list(aws: Aws) -> None:
    publish(aws)
    put_catalog(aws.dynamodb, {"a": ("Alpha", ["x", "y"]), "b": ("Beta", [])})
    answer = aws.runtime().recommender.recommendations("u1", 10)
    assert answer == {
        "user_id": "u1",
        "model_version": "v1",
        "source": "personalized",
        "items": [
            {"item_id": "a", "title": "Alpha", "categories": ["x", "y"], "score": 3.0},
            {"item_id": "b", "title": "Beta", "categories": [], "score": 2.0},
            {"item_id": "c", "title": None, "categories": [], "score": 1.0},
        ],
    }
    assert ids(aws.runtime().recommender.recommendations("u1", 2)) == ["a", "b"]


def test_equal_scores_come_back_ordered_by_item_id(aws: Aws) -> None:
    publish(aws)
    assert ids(aws.runtime().recommender.recommendations("u2", 3)) == ["a", "b", "c"]


def test_an_unknown_user_gets_popular_items_minus_what_they_consumed(aws: Aws) -> None:
    publish(aws, vectors=None)
    answer = aws.runtime().recommender.recommendations("stranger", 2)
    assert (answer["source"], ids(answer)) == ("popular", ["p1", "a"])
    put_event(aws.dynamodb, "stranger", "p1", BEFORE)
    assert ids(aws.runtime().recommender.recommendations("stranger", 2)) == ["a", "p2"]


def test_items_consumed_since_training_are_filtered_out(aws: Aws) -> None:
    publish(aws, vectors=None)  # no vectors: no fold-in, the filter alone
    put_event(aws.dynamodb, "u1", "a", AFTER)
    answer = aws.runtime().recommender.recommendations("u1", 10)
    assert (answer["source"], ids(answer)) == ("personalized", ["b", "c"])


def test_fold_in_moves_items_close_to_recent_events_up(aws: Aws) -> None:
    publish(aws)
    assert ids(aws.runtime().recommender.recommendations("u1", 4)) == ["a", "b", "c"]
    put_event(aws.dynamodb, "u1", "x", AFTER)
    answer = aws.runtime().recommender.recommendations("u1", 4)
    # p: a=1, b=.5, c=0 (d not listed: 0); q over {a, b, c, d}: a=0, b=1, c=.1, d=.9; score = (p + q) / 2
    assert answer["source"] == "realtime"
    assert [(i["item_id"], i["score"]) for i in answer["items"]] == [
        ("b", 0.75),
        ("a", 0.5),
        ("d", 0.45),
        ("c", 0.05),
    ]


def test_events_the_model_already_saw_do_not_trigger_fold_in(aws: Aws) -> None:
    publish(aws)
    put_event(aws.dynamodb, "u1", "x", BEFORE)
    answer = aws.runtime().recommender.recommendations("u1", 4)
    assert (answer["source"], ids(answer)) == ("personalized", ["a", "b", "c"])


def test_a_user_new_since_training_with_events_gets_fold_in_only(aws: Aws) -> None:
    publish(aws)
    put_event(aws.dynamodb, "newbie", "b", BEFORE)
    answer = aws.runtime().recommender.recommendations("newbie", 2)
    assert (answer["source"], ids(answer)) == ("realtime", ["x", "d"])  # u = b: x scores 1, d 0.9


def test_fold_in_is_skipped_when_the_vectors_cannot_be_read(aws: Aws) -> None:
    publish(aws)
    aws.s3.delete_object(Bucket=ARTIFACTS, Key="models/v1/item_vectors.npz")
    put_event(aws.dynamodb, "u1", "x", AFTER)
    answer = aws.runtime().recommender.recommendations("u1", 4)
    assert (answer["source"], ids(answer)) == ("personalized", ["a", "b", "c"])


def test_similar_items_exclude_the_item_itself(aws: Aws) -> None:
    publish(aws)
    answer = aws.runtime().recommender.similar("a", 10)
    assert (answer["model_version"], ids(answer)) == ("v1", ["b", "c"])


def test_an_unknown_item_has_no_similar_items(aws: Aws) -> None:
    publish(aws)
    with pytest.raises(NotFoundError, match="'zz'"):
        aws.runtime().recommender.similar("zz", 10)


def test_before_any_publish_the_catalog_answers_or_503(aws: Aws) -> None:
    recommender = aws.runtime().recommender
    with pytest.raises(UnavailableError, match="no model has been published yet") as caught:
        recommender.recommendations("u1", 10)
    assert caught.value.headers() == {"Retry-After": "60"}
    with pytest.raises(UnavailableError):
        recommender.similar("a", 10)
    put_catalog(aws.dynamodb, {"m2": ("Two", ["x"]), "m1": ("One", [])})
    answer = recommender.recommendations("u1", 10)
    assert (answer["source"], answer["model_version"], ids(answer)) == ("catalog", None, ["m1", "m2"])
    assert answer["items"][0] == {"item_id": "m1", "title": "One", "categories": [], "score": 0.0}


def test_the_live_pointer_is_cached_for_cache_seconds(aws: Aws) -> None:
    publish(aws)
    now = [0.0]
    runtime = build_runtime(aws.settings(cache_seconds=10.0), aws.dynamodb, lambda: aws.s3, None)
    runtime.recommender.store._clock = lambda: now[0]
    assert runtime.recommender.health()["model_version"] == "v1"
    publish(aws, "v2", recommendations={"u1": [("z", 1.0)]})
    assert runtime.recommender.recommendations("u1", 1)["model_version"] == "v1"  # still cached
    now[0] = 10.5
    answer = runtime.recommender.recommendations("u1", 1)
    assert (answer["model_version"], ids(answer)) == ("v2", ["z"])


def test_health_names_the_live_version(aws: Aws) -> None:
    assert aws.runtime().recommender.health() == {"status": "ok", "model_version": None, "published_at": None}
    publish(aws)
    assert aws.runtime().recommender.health()["model_version"] == "v1"
