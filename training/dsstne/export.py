"""DSSTNE's predict output (`recs.txt`) → the publish format (`recsys.model_outputs`), so the autoencoder's
recommendations go through the same evaluate, gate and publish steps as the FM's.

`recs.txt` holds one line per user, `user<TAB>item,score:item,score:…`, best first (DSSTNE's layout,
written by `recsys dsstne predict`). Names are DSSTNE names: when the text came from the preprocessing job
they are form-URL-encoded ids (glue/dsstne_text.py), decoded here with `unquote_plus`; a hand-made text's
names are the ids themselves (`decode_names=False`).

The popularity list comes from the input text (users per item). There are no item vectors: the
autoencoder has no per-item factors that a mean of consumed items could fold a new user into, so the API
serves its precomputed lists (minus newly consumed items) and no real-time fold-in for this model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np

from recsys import contracts
from recsys.model_outputs import (
    RECOMMENDATIONS,
    ListWriter,
    part_name,
    write_model_info,
    write_popularity,
)

MODEL_KIND = "autoencoder"
BLOCK_USERS = 8192


class ExportError(ValueError):
    """A recs.txt or input text that cannot be exported; the message names the file and line."""


def _name(raw: str, decode: bool) -> str:
    return unquote_plus(raw) if decode else raw


def read_recs(path: Path, *, decode_names: bool, k_max: int) -> Iterator[tuple[str, list[str], list[float]]]:
    """(user, items, scores) per line of recs.txt, at most k_max items each."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            user, tab, entries = line.partition("\t")
            if not tab or not user:
                raise ExportError(f"{path}, line {number}: expected user<TAB>item,score:…")
            items, scores = [], []
            for entry in entries.rstrip(":").split(":")[:k_max] if entries else []:
                item, comma, score = entry.rpartition(",")
                try:
                    value = float(score)
                except ValueError:
                    value = float("nan")
                if not comma or not item or not np.isfinite(value):
                    raise ExportError(f"{path}, line {number}: bad entry {entry!r} (expected item,score)")
                items.append(_name(item, decode_names))
                scores.append(value)
            yield _name(user, decode_names), items, scores


def item_popularity(input_text: Path, *, decode_names: bool) -> Counter[str]:
    """Users per item in a DSSTNE text (`user<TAB>item[,value]:…`)."""
    counts: Counter[str] = Counter()
    with open(input_text, encoding="utf-8") as lines:
        for line in lines:
            _, _, features = line.rstrip("\n").partition("\t")
            names = {entry.split(",", 1)[0] for entry in features.split(":") if entry}
            counts.update(_name(name, decode_names) for name in names)
    return counts


def export_recommendations(
    recs: Path,
    input_text: Path,
    out_dir: Path,
    *,
    model_version: str,
    run_id: str = "",
    decode_names: bool = False,
    k_max: int = contracts.MAX_TOP_K,
) -> dict[str, int]:
    """Write `out_dir` in the publish format (model.json last); returns counts of what was written."""
    popularity = item_popularity(input_text, decode_names=decode_names)
    catalog: dict[str, int] = {item: i for i, item in enumerate(popularity)}
    longest = lines = 0
    for _, items, _ in read_recs(recs, decode_names=decode_names, k_max=k_max):  # pass 1: the vocabulary
        longest, lines = max(longest, len(items)), lines + 1
        for item in items:
            catalog.setdefault(item, len(catalog))
    item_ids = np.array(list(catalog), dtype=str) if catalog else np.zeros(0, dtype=str)
    width = max(longest, 1)
    users = 0
    with ListWriter(out_dir, RECOMMENDATIONS, part_name(0, lines), model_version, item_ids) as writer:
        for block in _blocks(read_recs(recs, decode_names=decode_names, k_max=k_max), BLOCK_USERS):
            index = np.full((len(block), width), -1, np.int64)
            score = np.full((len(block), width), -np.inf, np.float32)
            for row, (_, items, scores) in enumerate(block):
                index[row, : len(items)] = [catalog[item] for item in items]
                score[row, : len(scores)] = scores
            users += writer.write_block([user for user, _, _ in block], index, score)
    write_popularity(out_dir, item_ids, np.array([popularity.get(item, 0) for item in item_ids], np.float64))
    write_model_info(out_dir, model_version=model_version, model_kind=MODEL_KIND, k=width, run_id=run_id)
    return {"users": users, "items": len(item_ids), "k": width}


def _blocks(
    rows: Iterator[tuple[str, list[str], list[float]]], size: int
) -> Iterator[list[tuple[str, list[str], list[float]]]]:
    block: list[tuple[str, list[str], list[float]]] = []
    for row in rows:
        block.append(row)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block
