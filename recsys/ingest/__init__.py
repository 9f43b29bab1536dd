"""Ingest of uploaded CSVs: validated, curated as Parquet, quarantined with reasons, recorded in a manifest.

The entry point is `recsys.ingest.process.process_object`; `events` reads queue messages, `settings` the
Lambda's configuration. This package imports nothing heavy itself, so the Lambda handler can import
`events` and `settings` at cold start and the Arrow-based modules only when an object arrives.
"""
