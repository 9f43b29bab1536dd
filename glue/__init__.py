"""The Glue preprocessing job: accepted uploads in, FM and DSSTNE training sets out (DESIGN.md §2).

- `settings`: the knobs (split, labels, negative sampling) as one typed object.
- `readers`: the curated ingest Parquet layout, or canonical / MovieLens CSVs, into normalised DataFrames.
- `transforms`: cleaning, pair collapse, labels, the temporal split, popularity (pure DataFrame → DataFrame).
- `indexing`: contiguous ids that stay stable across runs; `sampling`: popularity-weighted negatives;
  `features`: FM feature rows and item categories.
- `outputs`, `fm_channel`, `dsstne_text`, `manifest`, `storage`: what a run writes, and where.
- `pipeline`: the whole run; `job` (the only `awsglue` import; arguments parsed by `arguments`) and
  `cli` (`recsys preprocess`) call it.
"""
