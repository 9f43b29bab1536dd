"""The one validator of the CSV contract: used by `recsys validate`, the loaders and the ingest Lambda.

Streams any file in bounded memory and reports each bad record at the physical line where it starts,
with the column and the reason.
"""

from recsys.validation.api import iter_valid_batches, read_valid_table, validate_file, validate_stream
from recsys.validation.errors import InvalidFileError, RejectedRecord, RowError, UnusableFileError
from recsys.validation.report import ValidationReport
from recsys.validation.stream import ValidatedBatch
from recsys.validation.values import epoch_seconds, parse_ratings

__all__ = [
    "InvalidFileError",
    "RejectedRecord",
    "RowError",
    "UnusableFileError",
    "ValidatedBatch",
    "ValidationReport",
    "epoch_seconds",
    "iter_valid_batches",
    "parse_ratings",
    "read_valid_table",
    "validate_file",
    "validate_stream",
]
