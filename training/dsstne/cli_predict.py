"""`recsys dsstne predict`: DSSTNE's `predict`, top-k recommendations from a trained network.

    predict -b B -d NAME -i FEATURE_INDEX_IN -o FEATURE_INDEX_OUT -k K -n NETWORK.nc -f FILTER -s RECS
            -r INPUT [-p 4.3f]

-r is DSSTNE text (`sample<TAB>feature[,value]:…`, a file or a folder); its features are looked up in
the input feature index (unknown ones dropped) and its values ignored: every listed feature is a 1.
-d NAME must be the network's input DataSet without its `_input` suffix, as in DSSTNE (-d gl ↔ gl_input).
RECS gets one line per -r sample, in first-appearance order: `sample<TAB>item,score:item,score:…:` with
the k best items by score (descending), scores printed with `%<-p>` (DSSTNE's default %4.3f).

Filter (-f, same text format, a file or a folder): every item listed for a sample is removed from that
sample's recommendations, whatever its value; a later line for a sample replaces an earlier one. This is
the documented intent, not DSSTNE's code, which multiplies each listed item's score by its value (0 when
absent): its MovieLens example passes the ratings file, whose values are timestamps, so seen movies are
pushed to the top instead of removed. A sample whose items run out gets fewer than k entries.

Other differences: k may be up to the catalog size (DSSTNE needs k < 128; a k above the catalog size is
an error here), the output layer need not be named "Output", and no `<NAME>_input_predict.nc` or
samplesIndex file is written into the working directory. The file RECS appears complete or not at all.

Exit codes: 0 written; 1 unusable input (a missing or malformed file, -d not matching the network, k too
large, a network this engine cannot run).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from training.dsstne.cli_train import InputError, number_arg, resolve_device

if TYPE_CHECKING:  # heavy imports stay inside the handler so `recsys --help` is instant
    import numpy as np
    import torch

    from training.dsstne.engine import Engine
    from training.dsstne.indexes import Index
    from training.dsstne.layout import SparseRows

EXIT_BAD_INPUT = 1
PRECISION = re.compile(r"[-+ #0]*\d*(\.\d+)?[fFeEgG]")  # what may follow '%' in DSSTNE's -p


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="write DSSTNE's top-k recommendations file from a trained network",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-b",
        dest="batch",
        type=number_arg(1, integer=True),
        default=1024,
        help="batch size (default %(default)s)",
    )
    parser.add_argument(
        "-d", dest="dataset", required=True, metavar="NAME", help="input DataSet minus _input"
    )
    parser.add_argument("-i", dest="features_in", required=True, metavar="FILE", help="input feature index")
    parser.add_argument("-o", dest="features_out", required=True, metavar="FILE", help="output feature index")
    parser.add_argument(
        "-k",
        dest="k",
        type=number_arg(1, integer=True),
        default=100,
        help="recommendations per sample (default %(default)s)",
    )
    parser.add_argument("-n", dest="network", required=True, metavar="NETWORK.nc", help="trained network")
    parser.add_argument(
        "-f", dest="filter", required=True, metavar="FILTER", help="items to remove per sample (text)"
    )
    parser.add_argument(
        "-s", dest="recs", required=True, metavar="RECS", help="recommendations file to write"
    )
    parser.add_argument("-r", dest="input", required=True, metavar="INPUT", help="input text (samples)")
    parser.add_argument("-p", dest="precision", default="4.3f", help="printf format of scores (default 4.3f)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        count = _predict(args)
    except InputError as exc:
        print(f"predict: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.recs}: {count} samples, up to {args.k} recommendations each")
    return 0


@dataclass(frozen=True)
class _Catalog:
    """The output feature index as the network sees it: a label per unit, None for padding."""

    labels: list[str | None]
    size: int  # units with a label


def _predict(args: argparse.Namespace) -> int:
    from training.dsstne.config import ConfigError
    from training.dsstne.datasets import atomic_write_path
    from training.dsstne.engine import Engine, TrainSettings
    from training.dsstne.network import load_network

    if not PRECISION.fullmatch(args.precision):
        raise InputError(f"-p {args.precision!r}: expected a printf float format such as 4.3f")
    for flag, path in (("-n", args.network), ("-i", args.features_in), ("-o", args.features_out)):
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file ({flag})")
    for flag, path in (("-f", args.filter), ("-r", args.input)):
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file or folder ({flag})")
    device = resolve_device(args.device)
    try:
        spec, weights, input_name, _ = load_network(args.network, device)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{args.network}: not a readable DSSTNE network file: {exc}") from None
    if f"{args.dataset}_input" != input_name:
        hint = f" (use -d {input_name[: -len('_input')]})" if input_name.endswith("_input") else ""
        raise InputError(
            f"-d {args.dataset}: {args.dataset}_input is not the input DataSet of {args.network}, "
            f"which is {input_name!r}{hint}"
        )
    features_in = _index(args.features_in, "-i")
    if features_in.size > spec.input_width:
        raise InputError(
            f"{args.features_in}: {features_in.size} input features do not fit the network's input "
            f"layer of {spec.input_width} units"
        )
    catalog = _catalog(args.features_out, spec.layers[-1].width)
    if args.k > catalog.size:
        raise InputError(
            f"-k {args.k} is larger than the catalog: {args.features_out} has {catalog.size} items"
        )

    samples, inputs = _read_input(args.input, input_name, features_in, spec.input_width, device)
    excluded = _read_filter(args.filter, {name: row for row, name in enumerate(samples)}, catalog)
    engine = Engine(spec, weights, TrainSettings(batch=args.batch), device)
    try:
        with atomic_write_path(args.recs) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
            score_format = f"%{args.precision}"
            _write_recs(out, engine, inputs, samples, excluded, catalog, args.k, args.batch, score_format)
    except OSError as exc:
        raise InputError(f"{args.recs}: cannot write the recommendations: {exc}") from None
    return len(samples)


def _index(path: str, flag: str) -> Index:
    from training.dsstne.indexes import IndexFileError, load_index

    try:
        return load_index(path)
    except (IndexFileError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{exc} ({flag})") from None


def _catalog(path: str, width: int) -> _Catalog:
    index = _index(path, "-o")
    if index.size > width:
        raise InputError(
            f"{path}: {index.size} output features do not fit the network's output layer of {width} units"
        )
    labels = index.labels() + [None] * (width - index.size)
    return _Catalog(labels, len(index))


def _read_input(
    path: str, name: str, features_in: Index, width: int, device: torch.device
) -> tuple[list[str], SparseRows]:
    """-r as rows in first-appearance order (a repeated sample's later line replaces its features)."""
    import torch

    from training.dsstne.generate import GenerateError, build_dataset, input_files, iter_file_lines
    from training.dsstne.indexes import Index
    from training.dsstne.layout import SparseRows

    try:
        result = build_dataset(
            name, iter_file_lines(input_files(path)), features_in, Index(), add_features=False
        )
    except GenerateError as exc:
        detail = f": {exc.errors[0]}" + (f" (and {exc.total - 1} more)" if exc.total > 1 else "")
        raise InputError(f"{path}: {exc}{detail if exc.errors else ''} (-r)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the input: {exc} (-r)") from None
    indptr, indices = result.dataset.to_csr()
    rows = SparseRows(torch.from_numpy(indptr), torch.from_numpy(indices), width)
    return result.samples, rows.to(device)


def _filter_lines(path: str) -> Iterator[tuple[str, list[str]]]:
    """(sample, features) per filter line; values are ignored, so they are not parsed."""
    from training.dsstne.generate import GenerateError, input_files

    try:
        files = input_files(path)
    except GenerateError as exc:
        raise InputError(f"{exc} (-f)") from None
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                sample, tab, data = line.rstrip("\r\n").partition("\t")
                if tab and sample:
                    yield sample, [element.split(",", 1)[0] for element in data.split(":")]


def _read_filter(path: str, rows: Mapping[str, int], catalog: _Catalog) -> list[list[int]]:
    """Per input row, the output units to remove (a later filter line for a sample replaces earlier)."""
    unit = {label: i for i, label in enumerate(catalog.labels) if label is not None}
    excluded: list[list[int]] = [[] for _ in rows]
    try:
        for sample, features in _filter_lines(path):
            row = rows.get(sample)
            if row is not None:
                excluded[row] = [unit[f] for f in features if f in unit]
    except OSError as exc:
        raise InputError(f"{path}: cannot read the filter: {exc} (-f)") from None
    return excluded


def _write_recs(
    out: TextIO,
    engine: Engine,
    inputs: SparseRows,
    samples: Sequence[str],
    excluded: Sequence[Sequence[int]],
    catalog: _Catalog,
    k: int,
    batch: int,
    score_format: str,
) -> None:
    """Score `batch` rows at a time (memory: batch × catalog scores), mask, top-k, print DSSTNE's lines."""
    import torch

    device = inputs.indptr.device
    padding = torch.tensor([label is None for label in catalog.labels], device=device)
    for start in range(0, len(samples), batch):
        stop = min(start + batch, len(samples))
        scores = engine.scores(inputs, torch.arange(start, stop, device=device))
        scores[:, padding] = -torch.inf
        rows, units = _exclusions(excluded[start:stop])
        scores[torch.from_numpy(rows).to(device), torch.from_numpy(units).to(device)] = -torch.inf
        top = torch.topk(scores, k, dim=1)
        values, indices = top.values.cpu().tolist(), top.indices.cpu().tolist()
        for offset, (row_values, row_units) in enumerate(zip(values, indices, strict=True)):
            entries = "".join(
                f"{catalog.labels[u]},{score_format % v}:"
                for v, u in zip(row_values, row_units, strict=True)
                if v != -float("inf")
            )
            out.write(f"{samples[start + offset]}\t{entries}\n")


def _exclusions(excluded: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, unit) pairs to mask, as int64 arrays."""
    import numpy as np

    counts = np.fromiter((len(units) for units in excluded), dtype=np.int64, count=len(excluded))
    rows = np.repeat(np.arange(len(excluded), dtype=np.int64), counts)
    units = np.fromiter((u for units in excluded for u in units), dtype=np.int64, count=int(counts.sum()))
    return rows, units
