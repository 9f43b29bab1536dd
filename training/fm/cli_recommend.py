"""`recsys fm recommend`: each user's top-k unseen items and each item's similar items (publish format).

    recsys fm recommend --model MODEL.npz --run RUN_DIR --out DIR [--k 100] [--users START:END]
                        [--model-version V] [--no-similar] [--threads N] [--memory-mb MB]

RUN_DIR is the preprocessing run the model was trained on (its maps, train interactions and popularity).
DIR receives recommendations/part-<start>-<end>.parquet and, from the shard that starts at user 0,
similar_items/, popularity.parquet, item_vectors.npz and model.json (written last): the folder that
`recsys publish` loads. --users START:END ranks only users [START, END) (user indices; END may be left
out or run past the last user) so that an AWS Batch array job can split the users over machines; give
all shards the same --model-version (the default is derived from the run id and the model file).

Exit codes: 0 written; 1 unusable input (the message names the file or the argument); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 1


def user_range(text: str) -> tuple[int, int | None]:
    """START:END (END optional) as a half-open range of user indices."""
    start_text, sep, end_text = text.partition(":")
    try:
        if not sep:
            raise ValueError
        start = int(start_text)
        end = int(end_text) if end_text.strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END (user indices), got {text!r}") from None
    if start < 0 or (end is not None and end <= start):
        raise argparse.ArgumentTypeError(f"need 0 <= START < END, got {text!r}")
    return start, end


def register(subparsers: Any) -> None:
    from recsys.contracts import MAX_TOP_K

    parser = subparsers.add_parser(
        "recommend",
        help="top-k unseen items per user and similar items, in the publish format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, metavar="MODEL.npz", help="the FM artifact")
    parser.add_argument("--run", required=True, type=Path, metavar="RUN_DIR", help="the preprocessing run")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the model output folder")
    parser.add_argument("--k", type=int, default=MAX_TOP_K, help=f"list length, 1 to {MAX_TOP_K} (default)")
    parser.add_argument("--users", type=user_range, metavar="START:END", help="rank only these users")
    parser.add_argument("--model-version", metavar="V", help="default: fm-<run id>-<model file hash>")
    parser.add_argument("--no-similar", action="store_true", help="skip similar items")
    parser.add_argument("--threads", type=int, help="worker threads (default: every CPU)")
    parser.add_argument("--memory-mb", type=int, default=256, help="working memory of top-k (default 256)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from recsys.topk import MiB
    from training.fm.recommend import RecommendError, RecommendSettings, recommend

    settings = RecommendSettings(
        model=args.model,
        run=args.run,
        out=args.out,
        k=args.k,
        users=args.users,
        model_version=args.model_version,
        similar=not args.no_similar,
        threads=args.threads,
        memory_bytes=args.memory_mb * MiB,
        progress=not args.no_progress,
    )
    try:
        result = recommend(settings)
    except (RecommendError, ValueError) as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start, end = result.users
    shared = "; similar items, popularity, item vectors and model.json too" if result.shared_files else ""
    print(
        f"{result.out}: version {result.model_version}, users {start}:{end} ({result.lists_written} lists)"
        f"{shared} in {result.seconds} s"
    )
    return 0
