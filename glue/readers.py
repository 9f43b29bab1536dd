"""Reading the job's inputs into DataFrames with one set of columns, whatever their source.

Two sources, one shape:

- the curated ingest layout `<root>/kind=<kind>/ingest_date=<date>/*.parquet` (written by recsys.ingest:
  typed columns plus `source_key`, `source_version`, `line`), which the Glue job reads;
- canonical or MovieLens CSVs (header names mapped through `recsys.csv_contract`), which the local
  runner reads so that `recsys preprocess` works on the bundled sample as it comes.

Both give the columns of `TRANSACTION_COLUMNS` / `CATALOG_COLUMNS`; `ingest_date`, `source_key` and `line`
order rows by arrival when the transforms must pick the latest of several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys import contracts
from recsys.csv_contract import (
    CATEGORIES,
    EVENT_TYPE,
    ITEM_ID,
    RATING,
    TIMESTAMP,
    TITLE,
    USER_ID,
    HeaderError,
    Kind,
    map_header,
)

# The curated ingest layout (recsys.contracts) and its lineage columns (as recsys.ingest.curated names them;
# not imported from there, which would load pyarrow writers into the Glue driver for three strings).
KIND_PARTITION = contracts.INGEST_KIND_PARTITION
DATE_PARTITION = contracts.INGEST_DATE_PARTITION
SOURCE_KEY = "source_key"
LINE = "line"
ATTRIBUTES = "attributes"

TRANSACTION_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_TYPE, DATE_PARTITION, SOURCE_KEY, LINE)
CATALOG_COLUMNS = (ITEM_ID, TITLE, CATEGORIES, ATTRIBUTES, DATE_PARTITION, SOURCE_KEY, LINE)
ARRIVAL_ORDER = (DATE_PARTITION, SOURCE_KEY, LINE)  # later rows win ties


class InputError(ValueError):
    """The inputs cannot be read or hold nothing usable; the message says which and why."""


@dataclass(frozen=True)
class Inputs:
    """The raw (not yet normalised) inputs of one run and the files they came from."""

    transactions: DataFrame
    catalog: DataFrame | None
    source_files: tuple[str, ...]


def _select(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The given columns in order; a column the source lacks reads as null."""
    present = set(df.columns)
    return df.select(*(F.col(c) if c in present else F.lit(None).alias(c) for c in columns))


# ------------------------------------------------------------------------------------ curated Parquet


def _read_kind(spark: SparkSession, root: str, kind: Kind) -> DataFrame | None:
    path = f"{root.rstrip('/')}/{KIND_PARTITION}={kind.value}"
    try:
        df = (
            spark.read.option("basePath", root.rstrip("/"))
            .option("mergeSchema", "true")  # uploads of different shapes (with or without ratings)
            .parquet(path)
        )
    except AnalysisException as error:
        message = str(error)
        if any(m in message for m in ("PATH_NOT_FOUND", "Path does not exist", "UNABLE_TO_INFER_SCHEMA")):
            return None  # no folder, or a folder without Parquet files: nothing of this kind yet
        raise
    if DATE_PARTITION in df.columns:  # partition discovery may type it as a date
        df = df.withColumn(DATE_PARTITION, F.col(DATE_PARTITION).cast("string"))
    return df


def read_ingest(spark: SparkSession, root: str) -> Inputs:
    """Every accepted upload under the curated ingest prefix `root` (a catalog is optional)."""
    transactions = _read_kind(spark, root, Kind.TRANSACTIONS)
    if transactions is None:
        raise InputError(f"no transactions under {root.rstrip('/')}/{KIND_PARTITION}={Kind.TRANSACTIONS}/")
    catalog = _read_kind(spark, root, Kind.CATALOG)
    files = list(transactions.inputFiles()) + (list(catalog.inputFiles()) if catalog is not None else [])
    return Inputs(
        transactions=_select(transactions, TRANSACTION_COLUMNS),
        catalog=_select(catalog, CATALOG_COLUMNS) if catalog is not None else None,
        source_files=tuple(sorted(files)),
    )


# -------------------------------------------------------------------------------------------- CSVs


def _read_csv(spark: SparkSession, path: str, kind: Kind) -> DataFrame:
    """One CSV file (or folder of them) with its header mapped to canonical names; all columns strings."""
    try:
        df = (
            spark.read.option("header", "true")
            .option("inferSchema", "false")
            .option("escape", '"')  # RFC 4180: a quote inside quotes is doubled
            .option("multiLine", "true" if kind is Kind.CATALOG else "false")
            .option("encoding", "UTF-8")
            .csv(path)
        )
    except AnalysisException as error:
        raise InputError(f"{path}: cannot read ({str(error).splitlines()[0]})") from None
    cells = [c.lstrip("\ufeff") for c in df.columns]
    try:
        mapping = map_header(cells, kind)
    except HeaderError as error:
        raise InputError(f"{path}: {error.reason}") from None
    renamed = df.toDF(*mapping.names).withColumn(SOURCE_KEY, F.input_file_name())
    # A CSV read keeps file order in partition order, so this id orders rows by position in the file.
    renamed = renamed.withColumn(LINE, F.monotonically_increasing_id())
    if kind is Kind.CATALOG:
        renamed = renamed.withColumn(ATTRIBUTES, _attributes(mapping.extra))
        return _select(renamed, CATALOG_COLUMNS)
    return _select(renamed, TRANSACTION_COLUMNS)


def _attributes(extra: Sequence[str]) -> Column:
    """A catalog's columns outside the contract, as one JSON object (as the ingest step keeps them)."""
    if not extra:
        return F.lit("{}")
    return F.to_json(F.struct(*(F.col(f"`{c}`") for c in extra)))


def read_csvs(spark: SparkSession, catalog: Sequence[str], transactions: Sequence[str]) -> Inputs:
    """Canonical or MovieLens CSVs, as `recsys validate` accepts them (each file may differ in columns)."""
    if not transactions:
        raise InputError("no transactions file given")
    tx = [_read_csv(spark, p, Kind.TRANSACTIONS) for p in transactions]
    cat = [_read_csv(spark, p, Kind.CATALOG) for p in catalog]
    files = [f for df in tx + cat for f in df.inputFiles()]
    return Inputs(
        transactions=_union(tx),
        catalog=_union(cat) if cat else None,
        source_files=tuple(sorted(files)),
    )


def _union(frames: Sequence[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result
