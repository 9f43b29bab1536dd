"""The built-in FM image URI per region, from the SageMaker SDK's own table (never typed by hand).

The table is `sagemaker/core/image_uri_config/factorization-machines.json` of sagemaker-core 2.27.0,
vendored byte for byte under `image_uri_config/` (why, and how to regenerate: `vendor_image_table.py`).
`stacks/fm_training.py` reads the same file by path for its CfnMapping, so the job launched by hand and
the one the state machine launches use the same image. The URI is the SDK's
`{account}.dkr.ecr.{region}.{dns suffix}/factorization-machines:1`; the DNS suffix is the region's
partition's (a test checks it against botocore's endpoint data, which is what the SDK uses).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

FM_REPOSITORY = "factorization-machines"
FM_IMAGE_VERSION = "1"
TABLE_FILE = "factorization-machines.json"
_ACCOUNT = re.compile(r"^\d{12}$")
# Partitions whose DNS suffix is not amazonaws.com, by region-name prefix (the SDK's ALTERNATE_DOMAINS).
_DNS_SUFFIXES = (
    ("cn-", "amazonaws.com.cn"),
    ("us-isob-", "sc2s.sgov.gov"),
    ("us-isof-", "csp.hci.ic.gov"),
    ("us-iso-", "c2s.ic.gov"),
    ("eu-isoe-", "cloud.adc-e.uk"),
    ("eusc-", "amazonaws.eu"),
)


class UnknownRegionError(ValueError):
    """A region without the FM image in the SDK's table; the message lists the known ones."""


def load_table() -> dict[str, Any]:
    """The vendored table, parsed (its layout is the SDK's image_uri_config schema)."""
    text = resources.files("training.fm").joinpath("image_uri_config", TABLE_FILE).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


@functools.cache
def fm_image_registries() -> dict[str, str]:
    """Region → the AWS account that hosts the FM image there (training scope, version "1")."""
    table = load_table()
    if "training" not in table.get("scope", []):
        raise ValueError(f"{TABLE_FILE}: the table's scope has no 'training'")
    version = table["versions"][FM_IMAGE_VERSION]
    if version["repository"] != FM_REPOSITORY:
        raise ValueError(f"{TABLE_FILE}: repository {version['repository']!r}, expected {FM_REPOSITORY!r}")
    registries: dict[str, str] = dict(version["registries"])
    bad = sorted(region for region, account in registries.items() if not _ACCOUNT.match(str(account)))
    if bad:
        raise ValueError(f"{TABLE_FILE}: not a 12-digit account for {', '.join(bad)}")
    return registries


def ecr_dns_suffix(region: str) -> str:
    """The DNS suffix of ECR in the region's partition (amazonaws.com, amazonaws.com.cn, …)."""
    for prefix, suffix in _DNS_SUFFIXES:
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"


def fm_image_uri(region: str) -> str:
    """The training image, e.g. `382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1`."""
    registries = fm_image_registries()
    if region not in registries:
        raise UnknownRegionError(
            f"region {region!r}: SageMaker's FM image is not published there (per the SageMaker SDK's "
            f"table, sagemaker-core 2.27.0); known regions: {', '.join(sorted(registries))}"
        )
    account = registries[region]
    return f"{account}.dkr.ecr.{region}.{ecr_dns_suffix(region)}/{FM_REPOSITORY}:{FM_IMAGE_VERSION}"
