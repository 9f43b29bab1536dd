"""The ingest Lambda: S3 uploads (through SQS) into the curated zone, quarantine and the manifest."""
