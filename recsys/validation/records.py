"""Checks of whole records against a file's header mapping: the row-level rules of the contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys.csv_contract import (
    EVENT_TYPE,
    ITEM_ID,
    RATING,
    TIMESTAMP,
    USER_ID,
    HeaderMapping,
    Kind,
)
from recsys.validation import values
from recsys.validation.errors import RowError

# A field longer than this is an error (a record this long is almost always a broken quote).
MAX_FIELD_CHARS = 1 << 20

ValueCheck = Callable[[str], str | None]
ValueMask = Callable[[pa.Array], pa.Array]


def _id_rule(name: str) -> tuple[ValueCheck, ValueMask]:
    return (lambda v: values.check_id(v, name)), values.id_ok


_RULES: dict[str, tuple[ValueCheck, ValueMask]] = {
    USER_ID: _id_rule(USER_ID),
    ITEM_ID: _id_rule(ITEM_ID),
    TIMESTAMP: (values.check_timestamp, values.timestamp_ok),
    RATING: (values.check_rating, values.rating_ok),
    EVENT_TYPE: (values.check_event_type, values.event_type_ok),
}


class RecordChecker:
    """Validates records of one file. Stateful for catalogs: an item_id may be accepted only once."""

    def __init__(self, mapping: HeaderMapping) -> None:
        self.mapping = mapping
        self.width = len(mapping.names)
        self._rules = [
            (pos, mapping.original[pos], _RULES[name])
            for pos, name in enumerate(mapping.names)
            if name in _RULES and name in mapping.known
        ]
        self._item_pos = mapping.index(ITEM_ID) if mapping.kind is Kind.CATALOG else None
        self._first_line: dict[str, int] = {}  # catalog: accepted item_id -> its line

    def check(self, fields: Sequence[str], line: int) -> list[RowError]:
        """Every problem of one record (empty list when it is valid); accepts catalog ids it passes."""
        if len(fields) != self.width:
            return [RowError(line, None, f"expected {self.width} fields, found {len(fields)}")]
        errors = [
            RowError(
                line,
                self.mapping.original[pos],
                f"field is {len(v):,} characters long; at most {MAX_FIELD_CHARS:,} are allowed",
            )
            for pos, v in enumerate(fields)
            if len(v) > MAX_FIELD_CHARS
        ]
        if errors:
            return errors
        for pos, column, (check, _) in self._rules:
            reason = check(fields[pos])
            if reason is not None:
                errors.append(RowError(line, column, reason))
        if not errors and self._item_pos is not None:
            duplicate = self.accept_item(fields[self._item_pos], line)
            if duplicate is not None:
                errors.append(duplicate)
        return errors

    def accept_item(self, item_id: str, line: int) -> RowError | None:
        """Record a catalog item_id as accepted, or report it as a duplicate of an earlier line."""
        first = self._first_line.setdefault(item_id, line)
        if first == line:
            return None
        return RowError(
            line,
            self.mapping.original[self._item_pos or 0],
            f"duplicate item_id {item_id!r} (first at line {first})",
        )

    @property
    def tracks_items(self) -> bool:
        return self._item_pos is not None

    def fast_mask(self, columns: Sequence[pa.Array]) -> pa.Array:
        """Rows that certainly pass the value rules (duplicates excluded); the rest need `check`."""
        rules = {pos: rule[1] for pos, _, rule in self._rules}
        ok: pa.Array = pa.array(np.ones(len(columns[0]), dtype=bool))
        for pos, column in enumerate(columns):
            mask = rules.get(pos)
            part = mask(column) if mask else pc.less_equal(pc.binary_length(column), MAX_FIELD_CHARS)
            ok = pc.and_(ok, part)
        return ok
