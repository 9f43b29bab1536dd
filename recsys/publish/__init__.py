"""Publish: load one model version into the serving table, then switch the live pointer atomically.

`recsys publish --run-dir DIR` and `recsys rollback [--to VERSION]` (recsys/cli/publish.py); the layout
of the table is `recsys.serving.table`, the model folder's format `recsys.serving.model_files`. See
docs/serving.md for the guarantees and for when DynamoDB's import from S3 is the better path.
"""
