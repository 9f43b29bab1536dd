"""Scoring a model's publish-format output folder against a preprocessing run's held-out split.

This is what the pipeline's evaluate step does after training (the state machine's Evaluate task and
`recsys demo` share it), so the gate compares every model on the same footing:

- truth: the run's test interactions (`interactions/split=test/`) that are positive per the run's
  label (`label` = 1; a run without the column counts every test pair as positive);
- users: every user with at least one positive test pair; a user without a list in the folder counts
  as zero hits (the API would answer that user from popularity, which is scored as its own model);
- lists: the folder's `recommendations/`, read and checked row by row through
  `recsys.serving.model_files` (the publish step's own reader), so a folder the publish would refuse
  fails here too, with `OutputsError` naming the file and row;
- metrics (`recsys.metrics`, binary relevance): precision, recall, ndcg and map at k, catalog
  coverage (distinct recommended items over distinct train items), users evaluated and users with a
  list. Keys: "precision@10", "recall@10", "ndcg@10", "map@10", "coverage", "users", "users_with_list".

`evaluate_popularity` scores the run's popularity ranking (distinct users per item), each user's train
items removed, as the API's fallback does for a user it knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys import contracts
from recsys.metrics import catalog_coverage, ranking_metrics
from recsys.serving import model_files

LABEL_COLUMN = "label"  # the preprocessing run's 0/1 label (glue.transforms.LABEL)
ITEM_INDEX_COLUMN = "item_idx"
COUNT_COLUMN = "train_count"  # train interactions only: test pairs must not rank the baseline
DEFAULT_KS = (1, 5, 10, 20)


class OutputsError(ValueError):
    """The model folder or the run cannot be read; the message names the file (and row) at fault."""


@dataclass(frozen=True)
class _Truth:
    users: list[str]  # test users with at least one positive, sorted
    user_row: dict[str, int]
    item_col: dict[str, int]  # every item id met so far → column
    positives: list[tuple[int, int]]  # (row, column) pairs
    train_items: np.ndarray  # columns of the distinct train items
    train_seen: dict[str, set[str]]  # user → train item ids (popularity excludes them)


def _read_split(run_dir: Path, folder: str, columns: Sequence[str]) -> pa.Table:
    path = run_dir / folder
    if not path.is_dir():
        raise OutputsError(f"{path}: missing (is {run_dir} a complete preprocessing run?)")
    try:
        dataset = ds.dataset(str(path), format="parquet")
        present = [c for c in columns if c in dataset.schema.names]
        return dataset.to_table(columns=present)
    except (OSError, ValueError) as exc:
        raise OutputsError(f"{path}: cannot read ({exc})") from None


def _load_truth(run_dir: Path) -> _Truth:
    wanted = (contracts.RECS_USER_COLUMN, contracts.RECS_ITEM_COLUMN, LABEL_COLUMN)
    test = _read_split(run_dir, contracts.RUN_TEST_DIR, wanted)
    train = _read_split(run_dir, contracts.RUN_TRAIN_DIR, wanted[:2])
    for name, table in (("test", test), ("train", train)):
        missing = [c for c in wanted[:2] if c not in table.column_names]
        if missing:
            raise OutputsError(f"{run_dir / contracts.RUN_INTERACTIONS_DIR}split={name}: no {missing[0]}")
    if LABEL_COLUMN in test.column_names:
        labels = np.asarray(test.column(LABEL_COLUMN).to_numpy(zero_copy_only=False), dtype=np.float64)
        test = test.filter(pa.array(labels >= 1))
    test_users = [str(u) for u in test.column(contracts.RECS_USER_COLUMN).to_pylist()]
    test_items = [str(i) for i in test.column(contracts.RECS_ITEM_COLUMN).to_pylist()]
    users = sorted(set(test_users))
    user_row = {u: n for n, u in enumerate(users)}
    item_col: dict[str, int] = {}
    positives = [
        (user_row[u], item_col.setdefault(i, len(item_col)))
        for u, i in zip(test_users, test_items, strict=True)
    ]
    train_seen: dict[str, set[str]] = {}
    train_cols = set()
    for u, i in zip(
        train.column(contracts.RECS_USER_COLUMN).to_pylist(),
        train.column(contracts.RECS_ITEM_COLUMN).to_pylist(),
        strict=True,
    ):
        train_cols.add(item_col.setdefault(str(i), len(item_col)))
        if str(u) in user_row:
            train_seen.setdefault(str(u), set()).add(str(i))
    return _Truth(users, user_row, item_col, positives, np.array(sorted(train_cols)), train_seen)


def _score(truth: _Truth, lists: dict[str, list[str]], ks: Iterable[int]) -> dict[int, dict[str, float]]:
    """Metrics at each k over every test user; users without a list add zero hits."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be >= 1, got {ks}")
    width = ks[-1]
    top = np.full((len(truth.users), width), -1, dtype=np.int64)
    with_list = 0
    for user, row in truth.user_row.items():
        items = lists.get(user)
        if not items:
            continue
        with_list += 1
        ranked = [truth.item_col.setdefault(i, len(truth.item_col)) for i in items[:width]]
        top[row, : len(ranked)] = ranked
    n_users = len(truth.users)
    rows = np.array([r for r, _ in truth.positives], dtype=np.int64)
    cols = np.array([c for _, c in truth.positives], dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, max(len(truth.item_col), 1))
    )
    results: dict[int, dict[str, float]] = {}
    for k in ks:
        scores = ranking_metrics(top[:, :k], matrix, k) if n_users else {}
        # ranking_metrics averages over users with a list; the rest count as zero hits.
        share = with_list / n_users if n_users else 0.0
        results[k] = {
            f"precision@{k}": scores.get("precision", 0.0) * share,
            f"recall@{k}": scores.get("recall", 0.0) * share,
            f"ndcg@{k}": scores.get("ndcg", 0.0) * share,
            f"map@{k}": scores.get("map_at_k", 0.0) * share,
            "coverage": catalog_coverage(top[:, :k], truth.train_items),
            "users": float(n_users),
            "users_with_list": float(with_list),
        }
    return results


def read_lists(model_dir: str | Path) -> dict[str, list[str]]:
    """user id → ranked item ids of a publish-format folder, checked as the publish step checks them."""
    folder = Path(model_dir)
    try:
        info = model_files.read_model_info(folder)
        return {
            user: items
            for user, items, _ in model_files.iter_lists(folder, model_files.RECOMMENDATIONS, info.version)
        }
    except model_files.ModelFormatError as exc:
        raise OutputsError(str(exc)) from None
    except (OSError, ValueError) as exc:  # Arrow's errors for a file that is not Parquet
        raise OutputsError(f"{folder}: unreadable model output ({exc})") from None


def evaluate_outputs_at(
    model_dir: str | Path, run_dir: str | Path, ks: Sequence[int] = DEFAULT_KS
) -> dict[int, dict[str, float]]:
    """`evaluate_outputs` at several k from one read (for precision/recall-at-k curves)."""
    lists = read_lists(model_dir)
    return _score(_load_truth(Path(run_dir)), lists, ks)


def evaluate_outputs(model_dir: str | Path, run_dir: str | Path, k: int = 10) -> dict[str, float]:
    """Metrics at k of the folder's recommendations against the run's positive test pairs."""
    return evaluate_outputs_at(model_dir, run_dir, (k,))[k]


def popularity_lists(run_dir: str | Path, k: int) -> dict[str, list[str]]:
    """Each test user's top-k most popular items (the run's `popularity/`) not in the user's train items."""
    run = Path(run_dir)
    truth = _load_truth(run)
    return _popularity_lists(run, truth, k)


def _popularity_lists(run: Path, truth: _Truth, k: int) -> dict[str, list[str]]:
    path = run / contracts.RUN_POPULARITY_DIR
    try:
        table = pq.read_table(path, columns=[contracts.RECS_ITEM_COLUMN, COUNT_COLUMN])
    except (OSError, ValueError) as exc:
        raise OutputsError(f"{path}: cannot read the popularity table ({exc})") from None
    counts = np.asarray(table.column(COUNT_COLUMN).to_numpy(zero_copy_only=False), dtype=np.float64)
    ids = [str(i) for i in table.column(contracts.RECS_ITEM_COLUMN).to_pylist()]
    order = np.argsort(-counts, kind="stable")
    ranked = [ids[i] for i in order]
    longest = max((len(s) for s in truth.train_seen.values()), default=0)
    head = ranked[: k + longest]  # enough to fill k after removing any user's train items
    lists = {}
    for user in truth.users:
        seen = truth.train_seen.get(user, set())
        lists[user] = [i for i in head if i not in seen][:k]
    return lists


def evaluate_popularity_at(
    run_dir: str | Path, ks: Sequence[int] = DEFAULT_KS
) -> dict[int, dict[str, float]]:
    run = Path(run_dir)
    truth = _load_truth(run)
    return _score(truth, _popularity_lists(run, truth, max(ks)), ks)


def evaluate_popularity(run_dir: str | Path, k: int = 10) -> dict[str, float]:
    """The popularity baseline's metrics at k, on the same users and truth as `evaluate_outputs`."""
    return evaluate_popularity_at(run_dir, (k,))[k]
