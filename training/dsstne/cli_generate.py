"""`recsys dsstne generate-netcdf`: DSSTNE's `generateNetCDF` with the same flags.

    generate-netcdf -d NAME -i PATH -o OUT.nc -f FEATURE_INDEX -s SAMPLE_INDEX [-c | -m] [-t indicator|analog]

-i may be a folder (every file in it, sorted by name). -c creates the feature index from this input,
-m merges new features into it, and with neither the index must exist and unknown features are dropped.
The sample index is reused when it exists, so input and output datasets keep the same row order.
Exit codes: 0 written, 1 the input or an index file is unusable (nothing is written then).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

WARNINGS_SHOWN = 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate-netcdf",
        help="convert DSSTNE text (sample<TAB>feature[,value]:…) into a NetCDF dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-d", "--dataset", required=True, metavar="NAME", help="dataset name (the layer's DataSet)"
    )
    parser.add_argument("-i", "--input", required=True, metavar="PATH", help="input text file or folder")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.nc", help="NetCDF file to write")
    parser.add_argument("-f", "--features", required=True, metavar="FILE", help="feature index file")
    parser.add_argument("-s", "--samples", required=True, metavar="FILE", help="sample index file")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-c", "--create", action="store_true", help="create a new feature index and write it")
    mode.add_argument("-m", "--merge", action="store_true", help="add unseen features to the feature index")
    parser.add_argument(
        "-t",
        "--type",
        choices=("indicator", "analog"),
        default="indicator",
        help="indicator drops values (default); analog keeps them as float sparseData",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from training.dsstne.generate import FeatureMode, GenerateError, generate_netcdf
    from training.dsstne.indexes import IndexFileError

    mode = FeatureMode.CREATE if args.create else FeatureMode.MERGE if args.merge else FeatureMode.FIXED
    try:
        result = generate_netcdf(
            args.dataset,
            args.input,
            args.output,
            args.features,
            args.samples,
            mode=mode,
            analog=args.type == "analog",
        )
    except GenerateError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        if exc.total > len(exc.errors):
            print(f"… and {exc.total - len(exc.errors)} more", file=sys.stderr)
        print(f"generate-netcdf: {exc}; nothing written", file=sys.stderr)
        return 1
    except (IndexFileError, OSError) as exc:
        print(f"generate-netcdf: {exc}; nothing written", file=sys.stderr)
        return 1
    for line in result.warnings[:WARNINGS_SHOWN]:
        print(line, file=sys.stderr)
    if len(result.warnings) > WARNINGS_SHOWN:
        print(f"… and {len(result.warnings) - WARNINGS_SHOWN} more warnings", file=sys.stderr)
    ds = result.dataset
    dropped = f", {result.dropped_features} unknown features dropped" if result.dropped_features else ""
    print(
        f"{args.output}: dataset {ds.name!r}, {ds.examples} samples, {ds.nnz} entries, "
        f"width {ds.width}{dropped}"
    )
    return 0
