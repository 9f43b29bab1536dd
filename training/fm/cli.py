"""`recsys fm …`: train (locally or on SageMaker), import a SageMaker model, recommend."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fm", help="factorization machines: train, import-sagemaker-model, recommend"
    )
    commands = parser.add_subparsers(dest="fm_command", metavar="COMMAND", required=True)
    from training.fm import cli_import, cli_recommend, cli_train

    cli_train.register(commands)
    cli_import.register(commands)
    cli_recommend.register(commands)
