"""The FM image table: vendored unchanged from the SageMaker SDK's wheel, in its schema; the URIs built."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from botocore.regions import EndpointResolver
from botocore.session import get_session

from training.fm import image, vendor_image_table
from training.fm.image import UnknownRegionError, ecr_dns_suffix, fm_image_registries, fm_image_uri

TABLE_DIR = Path(image.__file__).parent / "image_uri_config"
REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d$")
# From ../shared/reference/sagemaker-fm.md §2.3 (read off the SDK docs, not from the vendored file).
REFERENCE_URIS = {
    "us-east-1": "382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1",
    "us-west-2": "174872318107.dkr.ecr.us-west-2.amazonaws.com/factorization-machines:1",
    "eu-west-1": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/factorization-machines:1",
    "ap-southeast-2": "712309505854.dkr.ecr.ap-southeast-2.amazonaws.com/factorization-machines:1",
    "cn-north-1": "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/factorization-machines:1",
    "us-gov-west-1": "226302683700.dkr.ecr.us-gov-west-1.amazonaws.com/factorization-machines:1",
}


def test_the_vendored_table_is_the_wheels_file_unedited() -> None:
    source = json.loads((TABLE_DIR / vendor_image_table.SOURCE_FILE).read_text(encoding="utf-8"))
    table = (TABLE_DIR / vendor_image_table.TABLE_FILE).read_bytes()
    assert source["package"] == "sagemaker-core"
    assert source["version"] == vendor_image_table.VERSION
    assert source["member"] == vendor_image_table.MEMBER
    assert hashlib.sha256(table).hexdigest() == source["sha256"], "edited by hand? run `make vendor`"


def test_the_table_has_the_sdks_image_uri_config_schema() -> None:
    table = image.load_table()
    assert set(table) == {"scope", "versions"}
    assert "training" in table["scope"]
    assert list(table["versions"]) == ["1"]
    version = table["versions"]["1"]
    assert set(version) == {"registries", "repository"}
    assert version["repository"] == "factorization-machines"
    registries = version["registries"]
    assert len(registries) >= 30
    for region, account in registries.items():
        assert REGION.match(region), region
        assert isinstance(account, str)
        assert re.fullmatch(r"\d{12}", account), (region, account)


def test_uris_match_the_reference_table() -> None:
    for region, uri in REFERENCE_URIS.items():
        assert fm_image_uri(region) == uri


def test_dns_suffixes_agree_with_botocores_endpoint_data() -> None:
    # The SDK builds the host from botocore's resolver; every region of the table must agree with it.
    resolver = EndpointResolver(get_session().get_data("endpoints"))
    for region in fm_image_registries():
        endpoint = resolver.construct_endpoint("ecr", region)
        assert endpoint is not None, region
        assert endpoint["hostname"] == f"ecr.{region}.{ecr_dns_suffix(region)}"


def test_unknown_regions_are_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(UnknownRegionError, match=r"'xx-nowhere-1'.*known regions: af-south-1, .*us-west-2"):
        fm_image_uri("xx-nowhere-1")


def test_the_vendoring_script_copies_the_member_byte_for_byte(tmp_path: Path) -> None:
    payload = b'{"scope": ["training"], "versions": {}}'
    wheel = tmp_path / "sagemaker_core-2.27.0-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(vendor_image_table.MEMBER, payload)
        archive.writestr("sagemaker/core/other.py", b"")
    wheel.write_bytes(buffer.getvalue())
    source = vendor_image_table.extract(wheel, tmp_path / "out")
    assert (tmp_path / "out" / vendor_image_table.TABLE_FILE).read_bytes() == payload
    assert source["sha256"] == hashlib.sha256(payload).hexdigest()
    assert source["wheel_sha256"] == hashlib.sha256(buffer.getvalue()).hexdigest()
    written = json.loads((tmp_path / "out" / vendor_image_table.SOURCE_FILE).read_text(encoding="utf-8"))
    assert written == source


def test_the_vendoring_script_refuses_a_wheel_without_the_table(tmp_path: Path) -> None:
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("x.py", b"")
    with pytest.raises(SystemExit, match="not a wheel holding"):
        vendor_image_table.extract(wheel, tmp_path / "out")
    assert not (tmp_path / "out").exists()
