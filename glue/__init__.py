"""The Glue preprocessing job: accepted uploads in, FM and DSSTNE training sets out (DESIGN.md §2).

- `settings`: the knobs (split, labels, negative sampling) as one typed object.
- `readers`: the curated ingest Parquet layout, or canonical / MovieLens CSVs, into normalised DataFrames.
- `transforms`: cleaning, the catalog view, popularity (pure DataFrame → DataFrame).
- `user_pass`: exact duplicates, the pair collapse, labels and the temporal split of one user partition
  (numpy; `sort_keys` sorts its rows); `user_outputs`: the pass that runs it on every partition and
  writes each one's interactions, DSSTNE lines and item counts (`arrow_partition` hands a partition over
  as one table).
- `indexing`: contiguous ids that stay stable across runs; `maps`: the run's user and item maps, built on
  the driver with pyarrow (`driver_maps`) when they fit there, as DataFrames when not; `item_tables`:
  popularity, the category map and the map counts, the same two ways; `sampling`: popularity-weighted
  negatives; `features`: FM feature rows and item categories.
- `outputs`, `fm_channel`, `dsstne_text` (lines built by `dsstne_arrow`), `manifest`, `storage`: what a
  run writes, and where; `spark_hash` is Spark's xxhash64 in numpy (negative draws on the executors).
- `pipeline`: the whole run; `job` (the only `awsglue` import; arguments parsed by `arguments`) and
  `cli` (`recsys preprocess`) call it.
"""
