"""``python -m arvae.bench``: its output format and that it finds the app's handlers it times.
No speed is asserted here (figures depend on the machine); the benchmark reports them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arvae import bench

ROOT = Path(__file__).resolve().parents[1]


def test_results_compare_with_targets_and_format_a_table():
    results = bench.Results()
    results.add("slider_latency_ms", 12.5, "ms", "mnist", "p50")
    results.add("slider_latency_ms", 45.0, "ms", "mnist", "p95", has_target=False)
    results.add("surface_ms", 2500.0, "ms", "mnist", "32x32")
    results.add("surface_ms", 300.0, "ms", "folk", "32x32")
    results.add("morphometrics_per_s", 1500.0, "digits/s", "decoded")
    results.failed("app_cold_start_s", RuntimeError("no port"))
    by_label = {bench._label(f): f for f in results.figures}
    assert by_label["slider_latency_ms [mnist, p50]"]["pass"] is True
    assert by_label["slider_latency_ms [mnist, p50]"]["target"] == "<= 30"
    assert "pass" not in by_label["slider_latency_ms [mnist, p95]"]
    assert by_label["surface_ms [mnist, 32x32]"]["pass"] is False  # <= 2,000 ms
    assert by_label["surface_ms [folk, 32x32]"]["target"] == "<= 500"
    assert by_label["morphometrics_per_s [decoded]"]["pass"] is True
    assert by_label["app_cold_start_s"]["pass"] is False and "no port" in by_label["app_cold_start_s"]["error"]
    text = bench.table(results)
    assert text.count("\n") == len(results.figures) + 1 and "FAIL" in text and "not measured" in text


def test_command_prints_machine_table_and_one_json_object_per_figure(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "arvae.bench", "--quick", "--only", "attributes",
                           "--json", str(tmp_path / "out.json")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    machine = objects[0]
    assert machine["name"] == "machine" and machine["logical_cores"] >= 1 and machine["torch"] and machine["cpu"]
    figures = objects[1:]
    assert [f["name"] for f in figures] == ["music_attributes_per_s"]
    figure = figures[0]
    assert {"name", "value", "unit", "target", "pass"} <= set(figure)
    assert figure["unit"] == "measures/s" and figure["target"] == ">= 1,000,000" and figure["value"] > 0
    assert "| music_attributes_per_s" in done.stdout
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["figures"] == figures and saved["machine"]["cpu"] == machine["cpu"]


def test_the_handlers_it_times_are_the_apps():
    """The slider, traversal and surface figures time the app's own event handlers; if the app is
    rewired, the benchmark must still find them."""
    pytest.importorskip("gradio")
    import torch

    threads = torch.get_num_threads()
    try:
        app, demo = bench.load_app(bench.ROOT / "checkpoints")
    finally:
        torch.set_num_threads(threads)  # importing the app sets torch's threads for its requests
    for key in ("sprites", "mnist"):
        assert callable(bench.handler(demo, name="edit", input_id=f"{key}-z"))
        assert callable(bench.handler(demo, api_name=f"{key}_surface"))
    for key in ("bach", "folk"):
        assert callable(bench.handler(demo, api_name=f"{key}_traverse"))
        assert callable(bench.handler(demo, api_name=f"{key}_surface"))
    with pytest.raises(LookupError):
        bench.handler(demo, api_name="no_such_endpoint")
    ctx = demo.contexts["mnist"]
    codes = bench.fresh_codes(ctx, "arvae", 3)
    assert len({c.tobytes() for c in codes}) == 3  # new codes: the app's caches never answer
