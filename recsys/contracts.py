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

# The DSSTNE GPU job on AWS Batch (training/dsstne/job.py; stacks/dsstne.py). A run reads its inputs from
# s3://<curated>/DSSTNE_PREFIX<run id>/ and publishes to s3://<artifacts>/DSSTNE_PREFIX<run id>/; the job
# role may touch nothing else. DSSTNE_SUCCESS_FILE is written last: consumers wait for it.
DSSTNE_PREFIX = "dsstne/"
DSSTNE_RUN_ID_ENV = "RECSYS_DSSTNE_RUN_ID"
DSSTNE_INPUT_URI_ENV = "RECSYS_DSSTNE_INPUT_URI"  # optional; default s3://<curated>/dsstne/<run id>/
DSSTNE_OUTPUT_URI_ENV = "RECSYS_DSSTNE_OUTPUT_URI"  # optional; default s3://<artifacts>/dsstne/<run id>/
DSSTNE_CONFIG_URI_ENV = "RECSYS_DSSTNE_CONFIG_URI"  # optional; default <input uri>config.json
DSSTNE_EPOCHS_ENV = "RECSYS_DSSTNE_EPOCHS"
DSSTNE_BATCH_ENV = "RECSYS_DSSTNE_BATCH"
DSSTNE_TOP_K_ENV = "RECSYS_DSSTNE_TOP_K"
DSSTNE_PARALLEL_ENV = "RECSYS_DSSTNE_PARALLEL"  # with several GPUs: "data" (default) or "model"
# Inputs under the run's input prefix: input.txt (+ output.txt), or one interactions.txt used for both.
DSSTNE_CONFIG_FILE = "config.json"
DSSTNE_INPUT_FILE = "input.txt"
DSSTNE_OUTPUT_FILE = "output.txt"
DSSTNE_INTERACTIONS_FILE = "interactions.txt"
# Outputs under the run's output prefix.
DSSTNE_NETWORK_FILE = "network.nc"
DSSTNE_INPUT_INDEX_FILE = "features_input"
DSSTNE_OUTPUT_INDEX_FILE = "features_output"
DSSTNE_SAMPLE_INDEX_FILE = "samples_input"
DSSTNE_RECS_FILE = "recs.txt"
DSSTNE_METRICS_FILE = "metrics.json"
DSSTNE_SUCCESS_FILE = "_SUCCESS"
