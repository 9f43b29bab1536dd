"""`glue.spark_conf.session_conf`: a setting changed for one block, the session's own value put back."""

from __future__ import annotations

from typing import Any

import pytest

from glue.spark_conf import session_conf

SET_KEY = "spark.sql.maxConcurrentOutputFileWriters"
UNSET_KEY = "spark.sql.recsys.test.unset"


def test_settings_hold_inside_and_are_put_back_after(spark: Any) -> None:
    spark.conf.set(SET_KEY, "2")
    with session_conf(spark, {SET_KEY: "4", UNSET_KEY: "x"}):
        assert spark.conf.get(SET_KEY) == "4"
        assert spark.conf.get(UNSET_KEY) == "x"
    assert spark.conf.get(SET_KEY) == "2"
    assert spark.conf.get(UNSET_KEY, None) is None  # unset again, not left at "x"


def test_settings_are_put_back_when_the_block_fails(spark: Any) -> None:
    spark.conf.set(SET_KEY, "2")
    with pytest.raises(RuntimeError), session_conf(spark, {SET_KEY: "4"}):
        raise RuntimeError("a failed write")
    assert spark.conf.get(SET_KEY) == "2"
