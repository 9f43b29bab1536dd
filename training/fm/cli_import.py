"""`recsys fm import-sagemaker-model`: a SageMaker FM model.tar.gz → the `.npz` artifact, without mxnet.

    recsys fm import-sagemaker-model MODEL_TAR_GZ [--manifest RUN/manifest.json] --out MODEL.npz

MODEL_TAR_GZ is the job's `output/model.tar.gz` (a local file; fetch it with `aws s3 cp`). With
--manifest (the preprocessing run the job trained on), the artifact also holds the run's feature blocks
and user/item/category id maps, so it can rank items for users; the run's feature_dim must be the model's.

Exit codes: 0 written; 1 unusable input (the message names the file, the member and what is wrong).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import-sagemaker-model",
        help="convert a SageMaker FM model.tar.gz into the .npz model artifact",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL_TAR_GZ", type=Path, help="the job's model.tar.gz")
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="MANIFEST",
        help="the preprocessing run's manifest.json (or its folder): attach its feature layout and id maps",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="MODEL.npz", help="artifact to write")
    parser.add_argument(
        "--predictor-type",
        choices=("binary_classifier", "regressor"),
        help="only for a model_algo-1 without meta.json (default: meta.json's)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from training.fm.artifact import ArtifactError
    from training.fm.sagemaker_model import import_sagemaker_model

    try:
        model = import_sagemaker_model(args.model, manifest=args.manifest, predictor_type=args.predictor_type)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.out.with_name(args.out.name + ".partial")
        model.save(temporary)
        temporary.replace(args.out)  # complete or absent, never half written
    except ArtifactError as exc:
        print(f"import-sagemaker-model: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"import-sagemaker-model: {args.out}: cannot write ({exc})", file=sys.stderr)
        return EXIT_BAD_INPUT
    layout = "with the run's layout" if model.layout is not None else "without a layout (no --manifest)"
    print(
        f"{args.out}: {model.predictor_type}, feature_dim {model.feature_dim}, "
        f"num_factors {model.num_factors}, {layout}"
    )
    return 0
