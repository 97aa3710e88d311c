"""Progress lines of long loops: every tenth in a log, none under --quiet."""

from __future__ import annotations

import logging

from dime_pipeline.progressbar import each


def test_a_log_gets_a_line_every_tenth_and_quiet_gets_none(caplog):
    with caplog.at_level(logging.INFO, logger="dime_pipeline.progressbar"):
        assert list(each(list(range(20)), "stores checked")) == list(range(20))
    lines = [r.getMessage() for r in caplog.records if r.name == "dime_pipeline.progressbar"]
    assert len(lines) == 10 and lines[-1].startswith("stores checked: 20/20 (")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dime_pipeline.progressbar"):
        assert list(each([1, 2, 3], "stores checked")) == [1, 2, 3]
    assert not caplog.records
