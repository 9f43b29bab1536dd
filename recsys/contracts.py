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
DSSTNE_PRECISION_ENV = "RECSYS_DSSTNE_PRECISION"  # train --precision, one of DSSTNE_PRECISIONS
DSSTNE_PRECISIONS = ("fp32", "tf32", "bf16")  # fp32: DSSTNE's arithmetic (the default)
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
DSSTNE_MODEL_DIR = "model/"  # the recommendations in the publish format (MODEL_* below), for publish

# The Glue preprocessing job (glue/job.py; stacks/preprocessing.py). Glue passes `--NAME value`; the job
# reads the curated ingest Parquet under INPUT_URI and writes one run under <OUTPUT_URI>RUNS_PREFIX<run id>/.
GLUE_ARG_INPUT_URI = "INPUT_URI"  # s3://<curated>/curated/ingest/ (kind=<kind>/ingest_date=<date>/…)
GLUE_ARG_OUTPUT_URI = "OUTPUT_URI"  # s3://<curated>/curated/
GLUE_ARG_RUN_ID = "RUN_ID"
# Optional arguments (defaults in glue/settings.py). PREVIOUS_RUN: "auto" (the run named by
# RUNS_LATEST_FILE, if any), "none" (number ids afresh), or a run's URI whose id maps are extended.
GLUE_ARG_PREVIOUS_RUN = "PREVIOUS_RUN"
GLUE_ARG_TEST_RATIO = "TEST_RATIO"
GLUE_ARG_POSITIVE_THRESHOLD = "POSITIVE_THRESHOLD"
GLUE_ARG_NEGATIVES = "NEGATIVES_PER_POSITIVE"
GLUE_ARG_SEED = "SEED"
GLUE_ARG_CATEGORY_FEATURES = "CATEGORY_FEATURES"  # "true" / "false"
# A preprocessing run's layout under <OUTPUT_URI>RUNS_PREFIX<run id>/; manifest.json is written last (a run
# without it is incomplete), then RUNS_PREFIX + RUNS_LATEST_FILE names the run.
RUNS_PREFIX = "runs/"
RUNS_LATEST_FILE = "latest.json"
RUN_MANIFEST_FILE = "manifest.json"
RUN_STATS_FILE = "stats.json"
RUN_INTERACTIONS_DIR = "interactions/"  # Parquet folders; interactions is partitioned by split
RUN_TRAIN_DIR = "interactions/split=train/"
RUN_TEST_DIR = "interactions/split=test/"
RUN_USER_MAP_DIR = "user_map/"
RUN_ITEM_MAP_DIR = "item_map/"
RUN_CATEGORY_MAP_DIR = "category_map/"
RUN_POPULARITY_DIR = "popularity/"
RUN_FM_TRAIN_DIR = "fm/train/"  # recordIO-protobuf shards, SageMaker FM channels "train" and "test"
RUN_FM_TEST_DIR = "fm/test/"
RUN_DSSTNE_INPUT_DIR = "dsstne/input/"  # DSSTNE text parts (generateNetCDF -i takes the folder)
RUN_DSSTNE_OUTPUT_DIR = "dsstne/output/"

# The ingest Lambda (lambdas/ingest; recsys/ingest; docs/ingest.md). Accepted rows of an upload land in the
# curated bucket under INGEST_CURATED_PREFIX<kind partition>=<kind>/<date partition>=<YYYY-MM-DD>/; bad rows
# under QUARANTINE_PREFIX<original key> in the ingest bucket, with <original key>QUARANTINE_ERRORS_SUFFIX.
INGEST_CURATED_PREFIX = CURATED_PREFIX + "ingest/"
INGEST_KIND_PARTITION = "kind"
INGEST_DATE_PARTITION = "ingest_date"
QUARANTINE_ERRORS_SUFFIX = ".errors.json"
INGEST_MANIFEST_TABLE_ENV = "RECSYS_INGEST_MANIFEST_TABLE"
INGEST_IDEMPOTENCY_TABLE_ENV = "RECSYS_INGEST_IDEMPOTENCY_TABLE"
INGEST_POLICY_ENV = "RECSYS_INGEST_POLICY"  # optional: keep-good-rows (default) or reject-file
INGEST_SAFETY_MARGIN_ENV = "RECSYS_INGEST_SAFETY_MARGIN_SECONDS"  # optional, default 60
INGEST_IDEMPOTENCY_EXPIRY_ENV = "RECSYS_INGEST_IDEMPOTENCY_EXPIRY_SECONDS"  # optional, default 7 days
INGEST_POLICY_KEEP_GOOD_ROWS = "keep-good-rows"
INGEST_POLICY_REJECT_FILE = "reject-file"
# Table keys (all strings). Manifest: one item per object version, "<bucket>/<key>" + version id (or
# "etag-<ETag>"). Idempotency: the Powertools DynamoDB persistence layer's key and TTL attributes.
MANIFEST_PARTITION_KEY = "object_key"  # not "object": a DynamoDB reserved word
MANIFEST_SORT_KEY = "version"
IDEMPOTENCY_PARTITION_KEY = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"

# Catalog items and real-time events (recsys/ingest/items.py, recsys/events/; stacks/ingest.py). Item metadata
# for serving: one item per catalog item id. Recent events: one item per event, newest last in a user's
# partition, expiring after RECENT_EVENTS_TTL_DAYS. Events also go to a Firehose stream that delivers them to
# the ingest bucket under EVENTS_STREAM_PREFIX, so the next training run includes them.
ITEMS_TABLE_ENV = "RECSYS_ITEMS_TABLE"
ITEMS_PARTITION_KEY = "item_id"
RECENT_EVENTS_TABLE_ENV = "RECSYS_RECENT_EVENTS_TABLE"
RECENT_EVENTS_PARTITION_KEY = "user_id"
RECENT_EVENTS_SORT_KEY = "event_key"  # "<epoch milliseconds, 13 digits>#<event id>": time-ordered, unique
RECENT_EVENTS_TTL_ATTRIBUTE = "expires_at"
RECENT_EVENTS_TTL_DAYS = 30
EVENTS_STREAM_ENV = "RECSYS_EVENTS_STREAM"  # the Firehose delivery stream's name
EVENTS_STREAM_PREFIX = TRANSACTIONS_PREFIX + "stream/"
MAX_EVENTS_PER_REQUEST = 500
MAX_ID_LENGTH = 256  # user and item ids, in events and in API paths

# Starting training (recsys/ingest/trigger.py): at most one pipeline run at a time, uploads during a run cause
# exactly one follow-up run. The state lives in one item of the pipeline state table.
PIPELINE_STATE_TABLE_ENV = "RECSYS_PIPELINE_STATE_TABLE"
PIPELINE_STATE_PARTITION_KEY = "name"
STATE_MACHINE_ARN_ENV = "RECSYS_STATE_MACHINE_ARN"

# Model outputs that the publish step loads (written by training/fm/topk.py and by the DSSTNE job's predict
# step; read by `recsys publish`). One folder per model version, e.g. s3://<artifacts>/models/<version>/ or a
# local directory. Parquet lists are best first; scores are float32; every row carries the model version.
MODELS_PREFIX = "models/"
MODEL_INFO_FILE = "model.json"  # {"model_version", "model_kind", "k", "created_at", "run_id", ...}
# Parquet lists: user_id (or item_id), item_ids list<string>, scores list<float>, model_version.
MODEL_RECS_DIR = "recommendations/"  # each user's top-k unseen items
MODEL_SIMILAR_DIR = "similar_items/"  # each item's most similar items
MODEL_POPULARITY_FILE = "popularity.parquet"  # item_id, score (float64), best first
MODEL_ITEM_VECTORS_FILE = "item_vectors.npz"  # item_ids (str), factors float32 (n, f), bias float32 (n,)
RECS_USER_COLUMN = "user_id"
RECS_ITEM_COLUMN = "item_id"
RECS_ITEM_IDS_COLUMN = "item_ids"
RECS_SCORES_COLUMN = "scores"
RECS_MODEL_VERSION_COLUMN = "model_version"
MAX_TOP_K = 100  # k_max of precomputed lists and of the API's ?k=

# SageMaker factorization machines (training/fm; stacks/fm_training.py). Training output goes to
# s3://<artifacts>/FM_PREFIX<run id>/ (SageMaker adds <job name>/output/model.tar.gz).
FM_PREFIX = "fm/"

# Metrics (CloudWatch embedded metric format, emitted with Powertools Metrics; stacks/ingest.py exposes them
# for the monitoring issue's alarms). The stack sets POWERTOOLS_METRICS_NAMESPACE to METRICS_NAMESPACE; the
# ingest Lambda emits, per processed object, the rows it quarantined and 1 when the whole file was rejected.
METRICS_NAMESPACE = "RecsysPipeline"
INGEST_ROWS_ACCEPTED_METRIC = "RowsAccepted"
INGEST_ROWS_QUARANTINED_METRIC = "RowsQuarantined"
INGEST_FILES_REJECTED_METRIC = "FilesRejected"
# Powertools service names (POWERTOOLS_SERVICE_NAME): Metrics adds the dimension service=<name> to every
# metric, so an alarm on a metric names the service too.
INGEST_SERVICE_NAME = "recsys-ingest"
EVENTS_SERVICE_NAME = "recsys-events"

# Pipeline runs, the training trigger's side (recsys/ingest/trigger.py). The state is the item whose
# PIPELINE_STATE_PARTITION_KEY is PIPELINE_STATE_ITEM. A run holding the lock longer than the lease (default
# 86400 s; set it above the state machine's timeout) is taken as crashed and may be taken over. Firehose
# must deliver EVENTS_STREAM_PREFIX objects uncompressed (ingest reads them as plain headerless CSV).
PIPELINE_STATE_ITEM = "pipeline"
PIPELINE_RUN_LEASE_ENV = "RECSYS_PIPELINE_RUN_LEASE_SECONDS"

# The serving table and the recommendation API (recsys/publish, recsys/serving, lambdas/recommend;
# stacks/serving.py; docs/serving.md). One table holds every model version, keyed by SERVING_PARTITION_KEY
# (a string): per-user lists "<version>#u#<user id>", similar items "<version>#i#<item id>", the popularity
# list "<version>#popular", version records "version#<version>", the registry of versions
# (SERVING_VERSIONS_KEY) and the live pointer (SERVING_LIVE_KEY: version, previous_version, item_vectors_uri,
# ...) that the API follows. Versions neither live nor previous expire by TTL on SERVING_TTL_ATTRIBUTE
# after a grace period. Fold-in item vectors go to s3://<artifacts>/MODELS_PREFIX<version>/item_vectors.npz.
SERVING_TABLE_ENV = "RECSYS_SERVING_TABLE"
SERVING_PARTITION_KEY = "pk"
SERVING_TTL_ATTRIBUTE = "expires_at"
SERVING_LIVE_KEY = "live"
SERVING_VERSIONS_KEY = "versions"
SERVING_CACHE_SECONDS_ENV = "RECSYS_SERVING_CACHE_SECONDS"  # optional: live pointer cache, default 10
SERVING_API_ENV = "RECSYS_SERVING_API"  # optional: which HTTP front end delivers the requests
SERVING_API_FUNCTION_URL = "function-url"  # the default: the path arrives percent-encoded
SERVING_API_HTTP_API = "http-api"  # API Gateway HTTP API (payload 2.0): the path arrives decoded

# The serving infrastructure (stacks/serving.py): Powertools service names of the recommendation and publish
# Lambdas (POWERTOOLS_SERVICE_NAME; the dimension service=<name> of their metrics).
RECOMMEND_SERVICE_NAME = "recsys-recommend"
PUBLISH_SERVICE_NAME = "recsys-publish"

# SageMaker FM training jobs (training/fm/sagemaker.py by hand, stacks/fm_training.py from Step Functions):
# both name jobs FM_JOB_NAME_PREFIX + a unique suffix and tag them with the run id under FM_RUN_ID_TAG.
FM_JOB_NAME_PREFIX = "recsys-fm-"
FM_RUN_ID_TAG = "recsys:run-id"

# FM training output, from either backend (training/fm/local.py, training/fm/sagemaker.py): the model artifact
# (training/fm/artifact.py) and the local trainer's metrics (final test metrics under SageMaker's names, the
# per-epoch history, timings) in the output folder.
FM_MODEL_FILE = "model.npz"
FM_METRICS_FILE = "metrics.json"

# The pipeline state machine and its step Lambdas (stacks/orchestration.py, lambdas/pipeline,
# recsys/pipeline_steps.py). FM import + top-k runs as a Batch CPU job on the DSSTNE image; it reads the
# SageMaker model.tar.gz and the run folder and writes the publish format under
# s3://<artifacts>/MODELS_PREFIX<version>/. The DSSTNE job writes its publish-format folder under
# s3://<artifacts>/DSSTNE_PREFIX<run id>/DSSTNE_MODEL_DIR. The evaluate step emits model metrics
# (Powertools Metrics, dimensions service, MODEL_METRIC_DIMENSION and version) and returns them to the state.
PIPELINE_SERVICE_NAME = "recsys-pipeline"
FM_TOPK_MODEL_URI_ENV = "RECSYS_FM_MODEL_URI"  # s3://…/model.tar.gz of the training job
FM_TOPK_RUN_URI_ENV = "RECSYS_FM_RUN_URI"  # s3://<curated>/curated/runs/<run id>/
FM_TOPK_OUTPUT_URI_ENV = "RECSYS_FM_OUTPUT_URI"  # s3://<artifacts>/models/<version>/
FM_TOPK_MODEL_VERSION_ENV = "RECSYS_FM_MODEL_VERSION"
FM_MODEL_VERSION_PREFIX = "fm-"  # FM versions: fm-<run id>; DSSTNE versions: dsstne-<run id>
DSSTNE_MODEL_VERSION_PREFIX = "dsstne-"
EVAL_K_ENV = "RECSYS_EVAL_K"
GATE_METRIC_ENV = "RECSYS_GATE_METRIC"
GATE_MARGIN_ENV = "RECSYS_GATE_MARGIN"
GATE_TOLERANCE_ENV = "RECSYS_GATE_TOLERANCE"
MODEL_METRIC_DIMENSION = "model"
