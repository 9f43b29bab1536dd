"""Names shared by the infrastructure (`stacks/`) and the runtime code (Lambdas, Glue job, trainers).

Each name is defined once, here, so the stack that sets a value and the code that reads it cannot drift
apart (DESIGN.md §3). Plain constants only: `stacks/` imports this module and nothing else from the
runtime side, and it must stay importable without any third-party package.
"""

from __future__ import annotations

# S3 key prefixes. Uploads land under CATALOG_PREFIX / TRANSACTIONS_PREFIX in the ingest bucket; rows that
# fail validation go under QUARANTINE_PREFIX (the ingest bucket expires them, see stacks/storage.py).
CATALOG_PREFIX = "catalog/"
TRANSACTIONS_PREFIX = "transactions/"
QUARANTINE_PREFIX = "quarantine/"
CURATED_PREFIX = "curated/"

# Environment variables through which Lambdas (and other runtime code) learn the bucket names.
INGEST_BUCKET_ENV = "RECSYS_INGEST_BUCKET"
CURATED_BUCKET_ENV = "RECSYS_CURATED_BUCKET"
ARTIFACTS_BUCKET_ENV = "RECSYS_ARTIFACTS_BUCKET"
