"""The demo's evaluation report: `report.html` and PNG plots in the run folder.

Plots: training loss per epoch (FM: train loss and test cross-entropy; autoencoder: DSSTNE's average
error per epoch), precision and recall at k per model, the popularity long tail of the run's train
interactions, and catalog coverage per model. matplotlib (the `local` extra) draws them off-screen;
without it the report has the tables only.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

PLOT_DIR = "plots"
STYLE = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}figure{display:inline-block;margin:8px}"
)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"{PLOT_DIR}/{path.name}"


def _loss_plot(plt: Any, history: list[dict[str, Any]], out: Path, model: str) -> str | None:
    series: dict[str, list[tuple[int, float]]] = {}
    for n, entry in enumerate(history, start=1):
        for key, value in entry.items():
            if isinstance(value, int | float) and ("loss" in key or "entropy" in key or "rmse" in key):
                series.setdefault(key, []).append((int(entry.get("epoch", n)), float(value)))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(f"{model} training")
    ax.legend(fontsize=8)
    return _save(plt, fig, out / f"{model}_loss.png")


def _at_k_plot(plt: Any, curves: dict[str, dict[str, dict[str, float]]], metric: str, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for model, at in curves.items():
        ks = sorted(int(k) for k in at)
        ax.plot(ks, [at[str(k)][f"{metric}@{k}"] for k in ks], marker="o", label=model)
    ax.set_xlabel("k")
    ax.set_ylabel(f"{metric}@k")
    ax.set_title(f"{metric} at k (held-out split)")
    ax.legend(fontsize=8)
    return _save(plt, fig, out / f"{metric}_at_k.png")


def _long_tail_plot(plt: Any, run_root: Path, out: Path) -> str | None:
    import numpy as np
    import pyarrow.parquet as pq

    try:
        counts = pq.read_table(run_root / "popularity", columns=["train_count"]).column(0).to_numpy()
    except (OSError, ValueError, KeyError):
        return None
    counts = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    counts = counts[counts > 0]
    if len(counts) == 0:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(counts) + 1), counts)
    ax.set_yscale("log")
    ax.set_xlabel("item rank by train interactions")
    ax.set_ylabel("users (log)")
    head = counts[: max(1, len(counts) // 10)].sum() / counts.sum()
    ax.set_title(f"popularity long tail: top 10% of items hold {head:.0%} of interactions")
    return _save(plt, fig, out / "long_tail.png")


def _coverage_plot(plt: Any, metrics: dict[str, dict[str, float]], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.0))
    names = list(metrics)
    ax.bar(names, [metrics[n].get("coverage", 0.0) for n in names])
    ax.set_ylabel("catalog coverage")
    ax.set_title("distinct recommended items / distinct train items")
    return _save(plt, fig, out / "coverage.png")


def metrics_rows(metrics: dict[str, dict[str, float]], k: int) -> list[list[str]]:
    """Header + one row per model: the table printed on the terminal and in the report."""
    columns = [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", "coverage", "users"]
    rows = [["model", *columns]]
    for model, values in metrics.items():
        cells = [
            f"{values.get(c, float('nan')):.4f}" if c != "users" else f"{int(values.get(c, 0))}"
            for c in columns
        ]
        rows.append([model, *cells])
    return rows


def write_report(
    run_dir: Path,
    summary: dict[str, Any],
    evaluation: dict[str, Any],
    extras: dict[str, Any],
    run_root: Path | None,
) -> Path:
    """Draw the plots and write run_dir/report.html; returns its path."""
    plt = _pyplot()
    plots: list[tuple[str, str]] = []
    out = run_dir / PLOT_DIR
    if plt is not None:
        for model in ("fm", "autoencoder"):
            loss = _loss_plot(plt, extras.get(f"{model}_history", []), out, model)
            if loss:
                plots.append((f"{model} loss per epoch", loss))
        if evaluation.get("curves"):
            plots.append(("Precision at k", _at_k_plot(plt, evaluation["curves"], "precision", out)))
            plots.append(("Recall at k", _at_k_plot(plt, evaluation["curves"], "recall", out)))
        if run_root is not None:
            tail = _long_tail_plot(plt, run_root, out)
            if tail:
                plots.append(("Popularity long tail", tail))
        if evaluation.get("metrics"):
            plots.append(("Coverage", _coverage_plot(plt, evaluation["metrics"], out)))
    k = int(evaluation.get("k", 10))
    rows = metrics_rows(evaluation.get("metrics", {}), k)
    table = "".join(
        "<tr>"
        + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>" for c in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    stages = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{seconds:.1f} s</td></tr>"
        for name, seconds in summary.get("seconds", {}).items()
    )
    images = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
        "</figcaption></figure>"
        for title, src in plots
    )
    gate = summary.get("gate", {})
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>recsys demo run {html.escape(summary["run_id"])}</title>
<style>{STYLE}</style>
</head><body>
<h1>recsys demo: run {html.escape(summary["run_id"])}</h1>
<p>Status: <b>{html.escape(str(summary.get("status")))}</b>.
Live model: <b>{html.escape(str(summary.get("model_version")))}</b>.</p>
<p>Gate: {html.escape(str(gate.get("reason", "")))}</p>
<h2>Offline metrics at k={k} (held-out split, positives only; users without a list count as misses)</h2>
<table>{table}</table>
<h2>Stages</h2><table>{stages}</table>
<h2>Plots</h2>{images or "<p>(matplotlib is not installed: pip install -e '.[local]')</p>"}
</body></html>
"""
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
