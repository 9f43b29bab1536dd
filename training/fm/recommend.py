"""Batch top-k and similar items from an FM model, written in the publish format (`recsys.model_outputs`).

For a user u and an item i (with its categories), ŷ(u, i) = w0 + w_u + w_i + ⟨v_u, v_i⟩ (item vectors
and biases from `FmModel.item_factors()`, categories folded in exactly). For a fixed user w0 + w_u is a
constant and the classifier's sigmoid is monotonic, so the ranking is that of the inner product
⟨[v_u, 1], [v_i, w_i]⟩ — exact top-k by one matrix multiply per block of users (`recsys.topk`). The
scores written are that inner product, w_i + ⟨v_u, v_i⟩: the scale the API's real-time fold-in uses
with item_vectors.npz (u · factors[j] + bias[j]), not a probability.

Seen items: a user's train interactions of the run (`interactions/split=train/`, every label) are never
recommended. The run's test interactions are not excluded: they are the held-out future the evaluation
measures, and at serving time the API filters what the user did after training from its recent events.

Similar items: cosine of the item factors v_i (categories included, bias left out), the item itself
excluded.

Shards: `users=(start, end)` ranks only users [start, end) and writes recommendations/part-<start>-<end>
.parquet, so an AWS Batch array job can spread users over machines (shard i of size S: i·S to (i+1)·S;
an end past the last user is clipped). The files every version has once — similar_items/, popularity
.parquet, item_vectors.npz, and model.json last — are written by the shard that starts at user 0. Give
every shard the same --model-version (the default, derived from the run id and the model file's hash, is
the same on every machine) and one fresh output folder per version.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import scipy.sparse as sp
from tqdm import tqdm

from recsys import contracts
from recsys import model_outputs as mo
from recsys.serving.table import VersionError, check_version
from recsys.topk import DEFAULT_MEMORY_BYTES, similar_items, top_k
from training.fm.artifact import ArtifactError, FmModel, load_layout

MODEL_KIND = "fm"
BLOCK_USERS = 16_384  # users per top_k call and per Parquet row group


class RecommendError(ValueError):
    """Unusable input (model, run, user range); the message names the file or the argument."""


@dataclass(frozen=True, kw_only=True)
class RecommendSettings:
    model: Path
    run: Path
    out: Path
    k: int = contracts.MAX_TOP_K
    users: tuple[int, int | None] | None = None
    """[start, end) user indices of this shard; None: every user. end None or past the last: the last."""
    model_version: str | None = None
    similar: bool = True
    threads: int | None = None
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    block_users: int = BLOCK_USERS
    progress: bool = True


@dataclass(frozen=True)
class RecommendResult:
    model_version: str
    out: Path
    users: tuple[int, int]
    lists_written: int
    similar_written: int
    shared_files: bool
    seconds: float


def default_version(run_id: str, model_path: Path) -> str:
    """fm-<run id>-<first 12 hex digits of the model file's SHA-256>: the same on every shard."""
    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    safe_run = "".join(c if c.isalnum() or c in "._-" else "-" for c in run_id)[:60]
    return (
        f"{MODEL_KIND}-{safe_run}-{digest.hexdigest()[:12]}"
        if safe_run
        else f"{MODEL_KIND}-{digest.hexdigest()[:12]}"
    )


def recommend(settings: RecommendSettings) -> RecommendResult:
    """Rank the shard's users (and, for the shard at 0, write the shared files); see the module doc."""
    started = time.perf_counter()
    if not 1 <= settings.k <= contracts.MAX_TOP_K:
        raise RecommendError(f"--k must be from 1 to {contracts.MAX_TOP_K}; got {settings.k}")
    model, run_id = _load(settings.model, settings.run)
    layout = model.layout
    assert layout is not None
    n_users, n_items = len(layout.user_ids), len(layout.item_ids)
    start, end = _user_range(settings.users, n_users)
    try:
        version = check_version(settings.model_version or default_version(run_id, settings.model))
    except VersionError as exc:
        raise RecommendError(f"--model-version: {exc}") from None

    user_vec, _ = model.user_factors()
    item_vec, item_bias = model.item_factors()
    items = np.hstack([item_vec, item_bias[:, None]]).astype(np.float32)
    seen = _seen(settings.run, start, end, n_items)

    lists = 0
    bar = tqdm(total=end - start, unit="user", desc="top-k", disable=not settings.progress, file=sys.stderr)
    with (
        bar,
        mo.ListWriter(
            settings.out, mo.RECOMMENDATIONS, mo.part_name(start, end), version, layout.item_ids
        ) as writer,
    ):
        for b0 in range(start, end, settings.block_users):
            b1 = min(b0 + settings.block_users, end)
            queries = np.hstack([user_vec[b0:b1], np.ones((b1 - b0, 1), np.float32)])
            ids, scores = top_k(
                queries,
                items,
                settings.k,
                exclude=seen[b0 - start : b1 - start],
                threads=settings.threads,
                memory_bytes=settings.memory_bytes,
            )
            lists += writer.write_block(layout.user_ids[b0:b1], ids, scores)
            bar.update(b1 - b0)

    similar = 0
    shared = start == 0
    if shared:
        if settings.similar:
            similar = _write_similar(settings, version, item_vec, layout.item_ids)
        _write_popularity(settings.run, settings.out, layout.item_ids)
        mo.write_item_vectors(settings.out, layout.item_ids, item_vec, item_bias)
        mo.write_model_info(
            settings.out,
            model_version=version,
            model_kind=MODEL_KIND,
            k=settings.k,
            run_id=run_id,
            predictor_type=model.predictor_type,
            num_factors=model.num_factors,
            users=n_users,
            items=n_items,
            score="w_i + <v_u, v_i> (the ranking part of the FM score; no w0 + w_u, no sigmoid)",
            seen_items_excluded="train interactions of the run",
            similar_items="cosine of item factors" if settings.similar else None,
        )
    return RecommendResult(
        version, settings.out, (start, end), lists, similar, shared, round(time.perf_counter() - started, 3)
    )


def _load(model_path: Path, run: Path) -> tuple[FmModel, str]:
    """The model with the run's layout (checked to be the same users and items when it has its own)."""
    try:
        model = FmModel.load(model_path)
        layout = load_layout(run)
    except ArtifactError as exc:
        raise RecommendError(str(exc)) from None
    if model.layout is not None and not (
        np.array_equal(model.layout.user_ids, layout.user_ids)
        and np.array_equal(model.layout.item_ids, layout.item_ids)
    ):
        raise RecommendError(
            f"{model_path}: its users/items ({len(model.layout.user_ids)}, {len(model.layout.item_ids)}) "
            f"are not those of the run {run} ({len(layout.user_ids)}, {len(layout.item_ids)}); use the run "
            "it was trained on"
        )
    try:
        model = model.with_layout(layout) if model.layout is None else model
    except ArtifactError as exc:
        raise RecommendError(f"{model_path}: {exc} (run {run})") from None
    manifest = json.loads((run / contracts.RUN_MANIFEST_FILE).read_text(encoding="utf-8"))
    return model, str(manifest.get("run_id", run.name))


def _user_range(users: tuple[int, int | None] | None, n_users: int) -> tuple[int, int]:
    if users is None:
        return 0, n_users
    start, end = users
    end = n_users if end is None else end
    if start < 0 or end <= start:
        raise RecommendError(f"--users {start}:{end}: need 0 <= START < END")
    if start >= n_users:
        raise RecommendError(f"--users {start}:{end}: START is past the last user (the run has {n_users})")
    return start, min(end, n_users)


def _seen(run: Path, start: int, end: int, n_items: int) -> sp.csr_matrix:
    """CSR (end - start, n_items): the shard's users' train items (read with a pushed-down filter)."""
    path = run / contracts.RUN_TRAIN_DIR
    try:
        dataset = ds.dataset(path, format="parquet")
        table = dataset.to_table(
            columns=["user_idx", "item_idx"],
            filter=(ds.field("user_idx") >= start) & (ds.field("user_idx") < end),
        )
    except (OSError, ValueError) as exc:
        raise RecommendError(f"{path}: cannot read the train interactions ({exc})") from None
    users = table.column("user_idx").to_numpy() - start
    items = table.column("item_idx").to_numpy()
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise RecommendError(f"{path}: item_idx outside the run's {n_items} items")
    seen = sp.csr_matrix(
        (np.ones(len(items), np.int8), (users, items)), shape=(end - start, n_items), dtype=np.int8
    )
    seen.sum_duplicates()
    return seen


def _write_similar(
    settings: RecommendSettings, version: str, item_vec: np.ndarray, item_ids: np.ndarray
) -> int:
    m = len(item_ids)
    written = 0
    bar = tqdm(total=m, unit="item", desc="similar", disable=not settings.progress, file=sys.stderr)
    with bar, mo.ListWriter(settings.out, mo.SIMILAR, mo.part_name(0, m), version, item_ids) as writer:
        for b0 in range(0, m, settings.block_users):
            b1 = min(b0 + settings.block_users, m)
            ids, sims = similar_items(
                item_vec,
                settings.k,
                items=np.arange(b0, b1),
                threads=settings.threads,
                memory_bytes=settings.memory_bytes,
            )
            written += writer.write_block(item_ids[b0:b1], ids, sims)
            bar.update(b1 - b0)
    return written


def _write_popularity(run: Path, out: Path, item_ids: np.ndarray) -> None:
    """The run's popularity (`count`: distinct users per item, train and test) for cold users."""
    path = run / contracts.RUN_POPULARITY_DIR
    try:
        table = pq.read_table(path, columns=["item_idx", "count"])
    except (OSError, ValueError) as exc:
        raise RecommendError(f"{path}: cannot read the popularity table ({exc})") from None
    index = table.column("item_idx").to_numpy()
    counts = np.zeros(len(item_ids), np.float64)
    ok = (index >= 0) & (index < len(item_ids))
    counts[index[ok]] = table.column("count").to_numpy()[ok]
    # Stable order by count: ties keep the item index order.
    mo.write_popularity(out, item_ids, counts)
