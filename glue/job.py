"""AWS Glue 5.0 entry script of the preprocessing job: the only module that imports `awsglue`.

Glue runs this file with `--JOB_NAME`, `--INPUT_URI`, `--OUTPUT_URI`, `--RUN_ID` and the optional
arguments of `glue.arguments`. It reads every accepted upload under INPUT_URI (the curated ingest
Parquet), runs `glue.pipeline.run_preprocess` and writes `<OUTPUT_URI>runs/<RUN_ID>/`. A failure raises:
Glue marks the run failed with the message, and no manifest.json is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from awsglue.context import GlueContext  # type: ignore[import-not-found]
from awsglue.job import Job  # type: ignore[import-not-found]
from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
from pyspark.context import SparkContext

from glue.arguments import REQUIRED, parse_job_arguments, present_options
from glue.pipeline import run_preprocess, show_progress
from glue.readers import read_ingest


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the job arguments, run the job, commit it; returns 0 (errors raise)."""
    args = list(sys.argv if argv is None else argv)
    resolved = getResolvedOptions(args, [*REQUIRED, *present_options(args)])
    arguments = parse_job_arguments(resolved)
    show_progress()  # one line per stage in the job's log
    context = GlueContext(SparkContext.getOrCreate())
    spark = context.spark_session
    job = Job(context)
    job.init(arguments.job_name, resolved)
    inputs = read_ingest(spark, arguments.input_uri)
    result = run_preprocess(
        spark, inputs, arguments.output_uri, arguments.run_id, arguments.settings, arguments.previous
    )
    print(json.dumps({"run": result.layout.root, "counts": result.manifest["counts"]}, sort_keys=True))
    job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
