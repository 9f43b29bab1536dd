"""`recsys dsstne train`: DSSTNE's `train` with the same flags, defaults and files.

    train -c CONFIG -i INPUT.nc -o OUTPUT.nc -n NETWORK.nc [-b 1024] [-e 40] [-alpha 0.025]
          [-lambda 0.0001] [-lambda1 0] [-mu M] [-mu1 0.999] [--optimizer sgd|adam]
          [--precision fp32|tf32|bf16]

As DSSTNE: -n must not exist yet; the config's DataSet names pick the datasets of -i and -o ("auto"
sizes are their widths); ShuffleIndices and Decay come from the config; the network is saved after every
epoch and a checkpoint `<NETWORK><epoch>.nc` every --checkpoint-every epochs; one line per epoch goes to
stderr in DSSTNE's shape (plus examples/s and peak GPU memory). Unlike DSSTNE, no `initial_network.nc`
is written into the working directory.

Optimiser: DSSTNE's train is hard-wired to plain SGD, where -mu (DSSTNE default 0.5) and -mu1 are unused.
--optimizer adam is DSSTNE's Adam mode with β1 = -mu and β2 = -mu1; -mu then defaults to 0.9, not 0.5.

Precision (ours; DSSTNE trains in fp32): --precision fp32 (default) reproduces DSSTNE's arithmetic;
tf32 runs the GEMMs on tensor cores with fp32 storage; bf16 is mixed precision (bf16 GEMMs and output
buffer, fp32 weights, optimizer state and loss), for speed on Ampere or later GPUs, with a loss curve
that moves by well under 1 % at a stable learning rate. The network file holds fp32 weights whatever
the precision.

Exit codes: 0 trained; 1 unusable input (a missing or malformed file, a config the engine does not run,
datasets that do not match the config, -n already there); 3 training diverged (the network of the last
good epoch, if any, is left in -n; nothing of the diverged epoch is written).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys import contracts

if TYPE_CHECKING:  # heavy imports stay inside the handler so `recsys --help` is instant
    import torch

    from training.dsstne.datasets import SparseDataset
    from training.dsstne.layout import SparseRows

EXIT_BAD_INPUT = 1
EXIT_DIVERGED = 3
SGD_MU = 0.5  # DSSTNE's -mu default; unused by SGD
ADAM_MU = 0.9  # Adam's usual β1, the -mu default with --optimizer adam


class InputError(Exception):
    """Bad input: printed as one line and exit code 1."""


def number_arg(minimum: float, *, integer: bool = False, strict: bool = False) -> Callable[[str], float]:
    """An argparse type for finite numbers >= minimum (> minimum when `strict`)."""

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    return parse


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a DSSTNE network (config.json + NetCDF datasets) into a network NetCDF",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", dest="config", required=True, metavar="CONFIG", help="network config.json")
    parser.add_argument("-i", dest="input", required=True, metavar="INPUT.nc", help="input dataset(s)")
    parser.add_argument("-o", dest="output", required=True, metavar="OUTPUT.nc", help="output dataset(s)")
    parser.add_argument(
        "-n", dest="network", required=True, metavar="NETWORK.nc", help="network file to write (must be new)"
    )
    parser.add_argument(
        "-b",
        dest="batch",
        type=number_arg(1, integer=True),
        default=1024,
        help="batch size (default %(default)s)",
    )
    parser.add_argument(
        "-e", dest="epochs", type=number_arg(1, integer=True), default=40, help="epochs (default %(default)s)"
    )
    parser.add_argument(
        "-alpha",
        dest="alpha",
        type=number_arg(0, strict=True),
        default=0.025,
        help="learning rate (default %(default)s)",
    )
    parser.add_argument(
        "-lambda", dest="l2", type=number_arg(0), default=1e-4, help="L2 weight decay (default %(default)s)"
    )
    parser.add_argument(
        "-lambda1", dest="l1", type=number_arg(0), default=0.0, help="L1 penalty (default %(default)s)"
    )
    parser.add_argument(
        "-mu",
        dest="mu",
        type=number_arg(0),
        default=None,
        help=f"Adam's beta1 (default {ADAM_MU} with --optimizer adam; DSSTNE's {SGD_MU} is unused by SGD)",
    )
    parser.add_argument(
        "-mu1",
        dest="mu1",
        type=number_arg(0),
        default=0.999,
        help="Adam's beta2 (default %(default)s; unused by SGD)",
    )
    parser.add_argument(
        "--optimizer", choices=("sgd", "adam"), default="sgd", help="sgd as DSSTNE's train (default), or adam"
    )
    parser.add_argument(
        "--precision",
        choices=contracts.DSSTNE_PRECISIONS,
        default="fp32",
        help="arithmetic: fp32 (default, DSSTNE's), tf32 GEMMs, or bf16 mixed precision (fp32 weights)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available"
    )
    parser.add_argument(
        "--parallel",
        choices=("data", "model"),
        default="data",
        help="under torchrun with several processes: split minibatches (data, default) or the output "
        "layer's columns (model, DSSTNE's way, for catalogs too wide for one GPU)",
    )
    parser.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=number_arg(0, integer=True),
        default=10,
        metavar="N",
        help="write NETWORK<epoch>.nc every N epochs (0: never; DSSTNE: 10)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except InputError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def resolve_device(name: str) -> torch.device:
    """--device: "auto" picks CUDA when there is one; asking for an absent CUDA is bad input."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return torch.device(name)


@dataclass(frozen=True)
class _Data:
    """The two datasets the config names, as engine rows."""

    inputs: SparseRows
    targets: SparseRows
    examples: int


def _train(args: argparse.Namespace) -> int:
    import torch

    from training.dsstne.config import ConfigError, load_config
    from training.dsstne.engine import DivergenceError, Engine, TrainSettings
    from training.dsstne.network import build_spec, initial_weights, save_network

    network = Path(args.network)
    if network.exists():  # DSSTNE's rule, checked before any work
        raise InputError(f"{network}: network file already exists; remove it or choose another -n")
    if not network.parent.is_dir():
        raise InputError(f"{network}: folder {network.parent} does not exist")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    datasets = _load_datasets(args.input) + _load_datasets(args.output)
    widths: dict[str, int] = {}
    for _, ds in datasets:
        widths.setdefault(ds.name, ds.features)  # first one wins, as DSSTNE's name lookup
    try:
        spec, input_name, output_name = build_spec(config, widths)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    device = resolve_device(args.device)
    group, rank = _join_torchrun(device)
    if group is not None and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    data = _rows(datasets, input_name, output_name, spec.loss.name, device)

    mu = args.mu if args.mu is not None else ADAM_MU if args.optimizer == "adam" else SGD_MU
    settings = TrainSettings(
        alpha=args.alpha,
        l2=args.l2,
        l1=args.l1,
        optimizer=args.optimizer,
        mu=mu,
        mu1=args.mu1,
        decay=config.decay,
        batch=args.batch,
        shuffle=config.shuffle_indices,
        precision=args.precision,
    )
    weights = initial_weights(config, spec, seed=settings.seed, device=device)
    # Model parallel needs the same denoising draws on every rank; data parallel, different ones.
    torch.manual_seed(settings.seed + (rank if args.parallel == "data" else 0))
    engine = Engine(spec, weights, settings, device, group=group, parallel=args.parallel)
    if rank:  # only the first process logs and writes files
        code = _follow(engine, data, args.epochs)
        _leave_torchrun(group)
        return code
    print(
        f"train: {data.examples} examples, layers {spec.input_width} → "
        f"{' → '.join(str(layer.width) for layer in spec.layers)}, {args.optimizer}, device {device}",
        file=sys.stderr,
    )
    total = 0.0
    for epoch in range(1, args.epochs + 1):
        try:
            stats = engine.train_epoch(data.inputs, data.targets)
        except DivergenceError as exc:  # nothing of this epoch is written
            kept = f"{network} keeps epoch {epoch - 1}" if epoch > 1 else f"{network} was not written"
            print(f"train: {exc}; {kept}", file=sys.stderr)
            return EXIT_DIVERGED
        total += stats.seconds
        print(_epoch_line(epoch, stats.error, stats.regularization, stats.seconds), end="", file=sys.stderr)
        rate = f", {stats.examples_per_second:.0f} examples/s"
        memory = "" if stats.gpu_peak_bytes is None else f", GPU peak {stats.gpu_peak_bytes / 2**20:.1f} MiB"
        print(rate + memory, file=sys.stderr, flush=True)
        weights = engine.full_weights()
        try:
            save_network(
                network,
                config,
                spec,
                weights,
                overwrite=epoch > 1,
                checkpoint_name=str(network),
                checkpoint_interval=args.checkpoint_every,
            )
            if args.checkpoint_every and epoch % args.checkpoint_every == 0:
                checkpoint = f"{network}{epoch}.nc"
                save_network(checkpoint, config, spec, weights, overwrite=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"{network}: cannot write the network: {exc}") from None
    _leave_torchrun(group)
    print(f"{network}: {args.epochs} epochs in {total:.2f}s ({device})")
    return 0


def _join_torchrun(device: torch.device) -> tuple[Any, int]:
    """Under torchrun (WORLD_SIZE > 1), join the process group: NCCL on GPUs, gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.group.WORLD, dist.get_rank()


def _leave_torchrun(group: Any) -> None:
    """Wait for every rank (the first one was writing files), then close the group cleanly."""
    if group is None:
        return
    import torch.distributed as dist

    dist.barrier(group)
    dist.destroy_process_group()


def _follow(engine: Any, data: Any, epochs: int) -> int:
    """A rank other than the first: train in step with it (same collectives), write nothing."""
    from training.dsstne.engine import DivergenceError

    for _ in range(epochs):
        try:
            engine.train_epoch(data.inputs, data.targets)
        except DivergenceError:
            return EXIT_DIVERGED
        engine.full_weights()  # the first rank gathers the sharded output layer to save it
    return 0


def _epoch_line(epoch: int, error: float, regularization: float, seconds: float) -> str:
    """DSSTNE's NNNetwork::Train line; "average error" is training plus regularisation error."""
    return (
        f"NNNetwork::Train: Epoch {epoch}, average error {error + regularization:f}, "
        f"average training error {error:f}, average regularization error {regularization:f}, "
        f"elapsed time {seconds:f}s"
    )


def _load_datasets(path: str) -> list[tuple[str, SparseDataset]]:
    from training.dsstne.datasets import read_netcdf

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such dataset file")
    try:
        return [(path, ds) for ds in read_netcdf(path)]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a readable DSSTNE dataset file: {exc}") from None


def _rows(
    datasets: list[tuple[str, SparseDataset]],
    input_name: str,
    output_name: str,
    loss: str,
    device: torch.device,
) -> _Data:
    """The named datasets as device rows, refusing what the engine would get wrong."""
    import torch

    from training.dsstne.layout import SparseRows

    found: dict[str, tuple[str, SparseDataset]] = {}
    for path, ds in datasets:
        found.setdefault(ds.name, (path, ds))
    (in_path, source), (out_path, target) = found[input_name], found[output_name]
    if not source.is_boolean:
        raise InputError(
            f"{in_path}: dataset {input_name!r} has values (analog); not supported by this engine yet "
            "(generate it without -t analog)"
        )
    if not target.is_boolean and loss != "smce":
        raise InputError(
            f"{out_path}: dataset {output_name!r} has values (analog); only ScaledMarginalCrossEntropy, "
            "which ignores them, is supported with such targets"
        )
    for path, ds in ((in_path, source), (out_path, target)):
        if ds.example_weights is not None:
            raise InputError(f"{path}: dataset {ds.name!r} is Weighted; not supported by this engine yet")
    if source.examples != target.examples:
        raise InputError(
            f"input dataset {input_name!r} ({in_path}) has {source.examples} examples but output dataset "
            f"{output_name!r} ({out_path}) has {target.examples}; generate both with the same sample index"
        )

    def rows(ds: SparseDataset) -> SparseRows:
        indptr, indices = ds.to_csr()
        return SparseRows(torch.from_numpy(indptr), torch.from_numpy(indices), ds.features).to(device)

    # Inputs keep repeated indices (DSSTNE counts them twice); targets are sets.
    return _Data(rows(source), rows(target).unique(), source.examples)
