"""`recsys dsstne …`: DSSTNE's command lines (generate-netcdf, train, predict)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dsstne", help="DSSTNE-compatible autoencoder: generate-netcdf, train, predict"
    )
    commands = parser.add_subparsers(dest="dsstne_command", metavar="COMMAND", required=True)
    from training.dsstne import cli_generate, cli_predict, cli_train

    cli_generate.register(commands)
    cli_train.register(commands)
    cli_predict.register(commands)
