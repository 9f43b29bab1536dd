"""`recsys demo`: the whole pipeline on one machine, then the API on http://127.0.0.1:8080.

Embedded AWS (moto on loopback) → upload the bundled MovieLens sample (or --catalog/--transactions) →
the ingest Lambda's handler on S3 events → the stages of the state machine (local_mode/stages.py) → an
HTML report with plots in $RECSYS_HOME/runs/<run id>/ → the recommendation handler behind a local HTTP
server. State lives in $RECSYS_HOME (default ~/.recsys; local_mode/home.py): a second run with new data
extends the first (ids stay stable), a run with no new data does nothing, a failed or interrupted run
leaves the live model as it was and its data owed to the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode import stages
from local_mode.home import (
    FAILED,
    NOOP,
    RUNNING,
    SUCCEEDED,
    DemoBusyError,
    Home,
    default_home,
    new_run_id,
    now_iso,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "ml-latest-small"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally (embedded AWS, Spark, FM, autoencoder) and serve the API",
        description="Ingest, preprocess, train FM and the DSSTNE-compatible autoencoder, evaluate, gate, "
        "publish and serve, on this machine. State lives in $RECSYS_HOME (default ~/.recsys).",
    )
    parser.add_argument(
        "--catalog", nargs="+", action="extend", default=[], metavar="CSV", help="catalog CSV(s)"
    )
    parser.add_argument(
        "--transactions", nargs="+", action="extend", default=[], metavar="CSV", help="transaction CSV(s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="API port (default %(default)s; 0: any free)")
    parser.add_argument("--no-serve", action="store_true", help="stop after publishing (scripts, CI)")
    parser.add_argument("--no-autoencoder", action="store_true", help="skip the DSSTNE autoencoder")
    parser.add_argument("--fm-epochs", type=int, default=10, help="FM epochs (%(default)s)")
    parser.add_argument("--ae-epochs", type=int, default=10, help="autoencoder epochs (%(default)s)")
    parser.add_argument("--k", type=int, default=10, help="list length evaluated and gated (%(default)s)")
    parser.add_argument("--margin", type=float, default=0.10, help="gate: relative margin over popularity")
    parser.add_argument(
        "--tolerance", type=float, default=0.02, help="gate: allowed drop below the live model"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run)


def _files(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    if not args.transactions:
        if args.catalog:
            raise ValueError("--catalog needs --transactions")
        return [SAMPLE / "movies.csv"], [SAMPLE / "ratings.csv"]
    return [Path(p) for p in args.catalog], [Path(p) for p in args.transactions]


def run(args: argparse.Namespace) -> int:
    try:
        catalog, transactions = _files(args)
    except ValueError as exc:
        print(f"recsys demo: error: {exc}", file=sys.stderr)
        return 2
    missing = [p for p in [*catalog, *transactions] if not p.is_file()]
    if missing:
        print(f"recsys demo: error: no such file: {missing[0]}", file=sys.stderr)
        return 2
    options = stages.Options(
        catalog=catalog,
        transactions=transactions,
        fm_epochs=args.fm_epochs,
        autoencoder=not args.no_autoencoder,
        ae_epochs=args.ae_epochs,
        k=args.k,
        metric=f"precision@{args.k}",
        margin=args.margin,
        tolerance=args.tolerance,
    )
    demo = Demo(Home(default_home()), options, log=stages.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout: the summary (or its JSON) only
            summary = demo.run()
    except DemoBusyError as exc:
        print(f"recsys demo: error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.json:
            print(json.dumps(summary, sort_keys=True))
        else:
            print_summary(summary)
        if args.no_serve or demo.aws is None:
            return 0 if summary["status"] != FAILED else 1
        return serve(demo, args.port)
    finally:
        demo.close()


@dataclass
class Demo:
    home: Home
    options: stages.Options
    log: Callable[[str], None] = print
    aws: Any = None
    env: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        if self.aws is not None:
            self.aws.stop()
            self.aws = None

    def run(self) -> dict[str, Any]:
        """One pipeline run (or a no-op); returns the summary. The embedded AWS stays up for serving."""
        with self.home.lock():
            for run_id in self.home.mark_interrupted():
                self.log(f"run {run_id} was interrupted: marked failed; its data is retried now")
            started = time.perf_counter()
            self.aws, self.env = stages.start_aws()
            ctx = stages.Context(self.home, self.options, new_run_id(), self.aws, self.env, log=self.log)
            record: dict[str, Any] = {
                "run_id": ctx.run_id,
                "status": RUNNING,
                "stage": None,
                "started_at": now_iso(),
                "seconds": {"embedded_aws": round(time.perf_counter() - started, 2)},
                "stages": {},
            }
            self.log(f"embedded AWS on {self.aws.endpoint}; state in {self.home.root}")
            names = stages.stage_names(self.options.autoencoder)
            try:
                self._stage(ctx, record, "ingest")
                pending = self.home.pending()
                if not pending:
                    return self._noop(ctx, record, started)
                record["data"] = pending
                for name in names[1:]:
                    self._stage(ctx, record, name)
                record["status"] = SUCCEEDED
            except BaseException as exc:  # the live model is untouched; the data stays owed
                stage = record.get("stage")
                verb = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                record.update(status=FAILED, reason=f"{verb} in {stage}: {type(exc).__name__}: {exc}")
                self.log(f"run {ctx.run_id} {record['reason']}; the live model stays")
                if not isinstance(exc, Exception):
                    self._finish(ctx, record, started)
                    raise
            return self._finish(ctx, record, started)

    def _stage(self, ctx: stages.Context, record: dict[str, Any], name: str) -> None:
        record["stage"] = name
        self.home.save_run(record)
        self.log(f"[{name}] …")
        t0 = time.perf_counter()
        result = stages.STAGES[name](ctx)
        seconds = round(time.perf_counter() - t0, 2)
        record["seconds"][name] = seconds
        record["stages"][name] = result
        self.log(f"[{name}] done in {seconds:.1f} s  {_brief(name, result)}")

    def _noop(self, ctx: stages.Context, record: dict[str, Any], started: float) -> dict[str, Any]:
        live = self.home.live()
        record.update(status=NOOP, reason="no new data since the last successful run")
        self.log(f"nothing new to train on; the live model stays ({(live or {}).get('version', 'none')})")
        return self._finish(ctx, record, started)

    def _finish(self, ctx: stages.Context, record: dict[str, Any], started: float) -> dict[str, Any]:
        live = self.home.live()
        record["finished_at"] = now_iso()
        record["seconds"]["total"] = round(time.perf_counter() - started, 2)
        record["model_version"] = live.get("version") if live else None
        record["published"] = ctx.published
        report = None
        if ctx.evaluation:
            from local_mode.report import write_report

            record["gate"] = dict(record["stages"].get("gate", {}))
            if record["stages"].get("publish", {}).get("baseline"):
                record["gate"]["reason"] = (
                    "no trained model beat popularity by the margin and nothing was live: the popularity "
                    f"baseline is published ({record['gate'].get('reason', '')})"
                )
            try:
                report = write_report(ctx.run_dir, record, ctx.evaluation, ctx.extras, ctx.run_root)
            except Exception as exc:  # the run's outcome stands without its report
                self.log(f"report not written: {exc}")
        self.home.save_run(record)
        return {
            "run_id": ctx.run_id,
            "status": record["status"],
            "reason": record.get("reason"),
            "model_version": record["model_version"],
            "published": ctx.published,
            "models": ctx.evaluation.get("metrics", {}),
            "failed_models": ctx.evaluation.get("failed", {}),
            "gate": record.get("gate", {}).get("reason"),
            "k": self.options.k,
            "seconds": record["seconds"],
            "report": str(report) if report else None,
            "run_dir": str(ctx.run_dir),
        }


def _brief(name: str, result: dict[str, Any]) -> str:
    if name == "ingest":
        return f"new files: {len(result['new_files'])}, rows accepted: {result['rows_accepted']:,}"
    if name == "preprocess":
        return (
            f"{result['users']:,} users, {result['items']:,} items, {result['interactions']:,} interactions"
        )
    if name == "gate":
        return str(result["reason"])
    if name == "publish":
        return f"published {result.get('published') or 'nothing'}"
    if name == "evaluate":
        return ", ".join(f"{n} {v}" for n, v in result["models"].items())
    return ""


def print_summary(summary: dict[str, Any]) -> None:
    from local_mode.report import metrics_rows

    print(
        f"\nrun {summary['run_id']}: {summary['status']}"
        + (f" ({summary['reason']})" if summary.get("reason") else "")
    )
    if summary["models"]:
        rows = metrics_rows(summary["models"], summary["k"])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "  "
                + "  ".join(
                    c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
    if summary.get("gate"):
        print(f"gate: {summary['gate']}")
    print(f"live model: {summary['model_version'] or 'none'}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
    if summary.get("report"):
        print(f"report: {summary['report']}")


def serve(demo: Demo, port: int) -> int:
    """Serve the live model with the recommendation Lambda's handler until Ctrl-C."""
    from lambdas.recommend import handler
    from local_mode.http import LocalHttpServer

    live = demo.home.live()
    if live is None:
        print("nothing published yet: nothing to serve", file=sys.stderr)
        return 1
    if live["version"] != _aws_live(demo):
        stages.load_into_aws(Path(live["folder"]), demo.env)  # a fresh embedded AWS: load the live model
    stages.restore_items(demo.home, demo.env)  # titles, when no catalog was ingested in this session
    handler.runtime.cache_clear()
    server = LocalHttpServer(handler.lambda_handler, port=port)
    user = _some_user(Path(live["folder"]))
    print(f"\nserving {live['version']} on {server.url} (Ctrl-C to stop); try:")
    print(f"  curl '{server.url}/health'")
    print(f"  curl '{server.url}/recommendations/{user}?k=10'")
    print(f"  curl '{server.url}/similar/<item id>?k=10'", flush=True)
    server.serve_until_interrupted()
    return 0


def _aws_live(demo: Demo) -> str | None:
    from local_mode.aws import clients
    from recsys.publish.pointer import read_live

    live = read_live(clients(demo.aws.endpoint).dynamodb, demo.env[stages.contracts.SERVING_TABLE_ENV])
    return live.version if live else None


def _some_user(folder: Path) -> str:
    from recsys.model_eval import read_lists

    try:
        return next(iter(read_lists(folder)), "<user id>")
    except Exception:
        return "<user id>"
