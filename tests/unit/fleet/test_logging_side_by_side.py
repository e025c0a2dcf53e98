"""The logging side-by-side tool's pure parts: variants from the command line, medians and ratios."""

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[3] / "bench" / "tools" / "logging_side_by_side.py"
SPEC = importlib.util.spec_from_file_location("logging_side_by_side", TOOL)
tool = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tool)


def test_a_variant_is_a_name_and_a_json_object():
    assert tool.parse_variant('b4k={"logging_queue_batch_size": 4096}') == ("b4k", {"logging_queue_batch_size": 4096})
    assert tool.parse_variant("default={}") == ("default", {})


@pytest.mark.parametrize("text", ["nojson", "=", "x=[1]", "x={oops}", '={"a": 1}'])
def test_a_bad_variant_is_named(text):
    with pytest.raises(SystemExit, match="variant"):
        tool.parse_variant(text)


def test_medians_and_ratios_to_the_first_variant():
    ships = [
        {"variant": v, "lines_per_second": lps, "rsyslog_cpu_us_per_line": us, "receiver_cpu_us_per_line": 10.0}
        for v, lps, us in [("a", 100, 20.0), ("b", 150, 10.0), ("a", 300, 40.0), ("b", 90, 30.0), ("a", 200, 30.0)]
    ]
    medians = tool.summary(ships, [("a", {}), ("b", {})])
    assert medians["a"]["lines_per_second"] == 200 and medians["a"]["lines_per_second_ratio"] == 1.0
    assert medians["b"]["lines_per_second"] == 120 and medians["b"]["lines_per_second_ratio"] == 0.6
    assert medians["b"]["rsyslog_cpu_ratio"] == round(20.0 / 30.0, 3)
