"""A tiny preprocessing run with FM channels, for the local trainer's tests (not a test module).

Users and items fall into two groups; a user likes (label 1) the items of its own group, so the labels are
learnable by an FM with any factor dimension ≥ 1 and not by biases alone (both labels are equally
frequent per user and per item).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys import contracts
from recsys.recordio import write_sharded

N_USERS, N_ITEMS, N_CATS = 12, 16, 2


def planted_rows(n: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """n random (user, item, item's category) one-hot rows and their planted labels."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n)
    items = rng.integers(0, N_ITEMS, n)
    labels = ((users % 2) == (items % 2)).astype(np.float32)
    columns = np.stack([users, N_USERS + items, N_USERS + N_ITEMS + items % N_CATS], axis=1)
    matrix = sp.csr_matrix(
        (np.ones(columns.size, np.float32), columns.reshape(-1), np.arange(0, columns.size + 1, 3)),
        shape=(n, N_USERS + N_ITEMS + N_CATS),
    )
    return matrix, labels


def make_fm_run(root: Path, *, n_train: int = 1500, n_test: int = 400, seed: int = 0) -> Path:
    """Write manifest.json, fm/train/, fm/test/ and the id maps of a run; returns the run folder."""
    run = root / "run"
    feature_dim = N_USERS + N_ITEMS + N_CATS
    channels = {}
    for name, n, part_seed in (("train", n_train, seed), ("test", n_test, seed + 1)):
        matrix, labels = planted_rows(n, part_seed)
        folder = run / "fm" / name
        paths = write_sharded(folder, matrix, labels, feature_dim, max_bytes=20_000)
        channels[name] = {
            "path": f"fm/{name}/",
            "files": [p.name for p in paths],
            "records": n,
            "positives": int(labels.sum()),
            "bytes": sum(p.stat().st_size for p in paths),
        }
    manifest = {
        "run_id": "tiny",
        "feature_dim": feature_dim,
        "blocks": {
            "users": {"offset": 0, "size": N_USERS},
            "items": {"offset": N_USERS, "size": N_ITEMS},
            "categories": {"offset": N_USERS + N_ITEMS, "size": N_CATS},
        },
        "fm": {"channels": channels, "predictor_type": "binary_classifier"},
    }
    (run / contracts.RUN_MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")

    def parquet(folder: str, columns: dict[str, list[object]]) -> None:
        (run / folder).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), run / folder / "part-00000.parquet")

    parquet(
        contracts.RUN_USER_MAP_DIR,
        {"user_idx": list(range(N_USERS)), "user_id": [f"u{i}" for i in range(N_USERS)]},
    )
    parquet(
        contracts.RUN_ITEM_MAP_DIR,
        {
            "item_idx": list(range(N_ITEMS)),
            "item_id": [f"i{i}" for i in range(N_ITEMS)],
            "categories": [f"c{i % N_CATS}" for i in range(N_ITEMS)],
        },
    )
    parquet(
        contracts.RUN_CATEGORY_MAP_DIR,
        {"category_idx": list(range(N_CATS)), "category": [f"c{i}" for i in range(N_CATS)]},
    )
    return run
