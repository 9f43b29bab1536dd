"""Helpers shared by the benchmark scripts: machine notes and measured child processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"


def machine() -> dict[str, Any]:
    """What the figures were measured on (they only compare within one run)."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    mem_gib = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "memory_gib": mem_gib,
    }


def run_measured(code: str, *, one_core: bool = True) -> dict[str, Any]:
    """Run `code` in a fresh interpreter (optionally pinned to one core); it must print one JSON object.

    The child adds its own peak RSS, so each measurement has its own process and its own peak.
    """
    prologue = "import os, json, resource, time\n" + (
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n" if one_core else ""
    )
    epilogue = (
        "\nresult['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prologue + code + epilogue],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
