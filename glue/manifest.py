"""manifest.json: what a trainer, the evaluation step or the next run needs to read a run's outputs.

The manifest is the run's contract with its consumers: the FM feature layout (feature_dim and the block
offsets), the label definition, the split, where each output lies, and what went in. It is written last,
so its presence also marks the run complete.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from glue import outputs
from glue.features import FeatureLayout
from glue.fm_channel import CONTENT_TYPE, ChannelSummary
from glue.readers import Inputs
from glue.sampling import draws_per_positive
from glue.settings import PreprocessSettings
from glue.transforms import LABEL, TRAIN
from recsys import contracts

MANIFEST_VERSION = 1
DSSTNE_NAME_ENCODING = (
    "form-urlencoded UTF-8 (Spark url_encode / java.net.URLEncoder): letters, digits and .-*_ unchanged, "
    "space as +, other bytes as %XX; decode with urllib.parse.unquote_plus"
)


def build_manifest(
    layout: outputs.RunLayout,
    settings: PreprocessSettings,
    features: FeatureLayout,
    counts: dict[str, int],
    channels: dict[str, ChannelSummary],
    inputs: Inputs,
    previous_root: str | None,
) -> dict[str, Any]:
    """manifest.json: everything a trainer or the evaluation step needs to read this run's outputs."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_id": layout.run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_run": previous_root,
        "feature_dim": features.feature_dim,
        "blocks": features.blocks(),
        "counts": counts,
        "label": {
            "column": LABEL,
            "positive_rating_threshold": settings.positive_threshold,
            "positive_events": list(settings.positive_events),
            "rule": (
                "1 when the pair's latest rating >= positive_rating_threshold; "
                "for a pair without any rating, 1 when one of its events has no type or a type in "
                "positive_events; else 0"
            ),
            "negatives": {
                "per_positive": settings.negatives_per_positive,
                "draws_per_positive": draws_per_positive(settings.negatives_per_positive),
                "weights": f"train_count ** {settings.negative_exponent}",
                "excludes": "every item the user interacted with, in train or test",
                "seed": settings.seed,
            },
        },
        "split": {"kind": "temporal", "test_ratio": settings.test_ratio, "min_history": settings.min_history},
        "fm": {
            "content_type": CONTENT_TYPE,
            "predictor_type": "binary_classifier",
            "features": "float32 sparse rows of shape [feature_dim], all values 1.0: user one-hot, item "
            "one-hot at blocks.items.offset, item categories at blocks.categories.offset",
            "channels": {
                name: {
                    "path": contracts.RUN_FM_TRAIN_DIR if name == TRAIN else contracts.RUN_FM_TEST_DIR,
                    "files": list(channel.files),
                    "records": channel.records,
                    "positives": channel.positives,
                    "bytes": channel.bytes,
                }
                for name, channel in channels.items()
            },
        },
        "dsstne": {
            "input": contracts.RUN_DSSTNE_INPUT_DIR,
            "output": contracts.RUN_DSSTNE_OUTPUT_DIR,
            "lines": "one per train user: name<TAB>item:item:… (item,rating with values)",
            "target": str(settings.dsstne_target),
            "values": settings.dsstne_values,
            "name_encoding": DSSTNE_NAME_ENCODING,
        },
        "tables": {
            "interactions": contracts.RUN_INTERACTIONS_DIR,
            "train": contracts.RUN_TRAIN_DIR,
            "test": contracts.RUN_TEST_DIR,
            "user_map": contracts.RUN_USER_MAP_DIR,
            "item_map": contracts.RUN_ITEM_MAP_DIR,
            "category_map": contracts.RUN_CATEGORY_MAP_DIR if settings.categories else None,
            "popularity": contracts.RUN_POPULARITY_DIR,
        },
        "source_files": list(inputs.source_files),
        "settings": {**asdict(settings), "dsstne_target": str(settings.dsstne_target)},
    }
