"""Placeholder: being written (the sub-command registers nothing yet)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add nothing yet."""
