"""The serving resources in moto (see tests/unit/recsys/serving/fixtures.py)."""

from tests.unit.recsys.serving.fixtures import aws_credentials_fixture, aws_fixture, clients_fixture

__all__ = ["aws_credentials_fixture", "aws_fixture", "clients_fixture"]
