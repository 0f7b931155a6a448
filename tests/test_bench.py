"""``python benchmarks/bench.py``: its output format, and that what it times is the app's explorer
core and views. No speed is asserted here (figures depend on the machine); the benchmark reports them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench

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
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--only", "attributes",
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


def test_it_times_the_apps_explorer_core_and_views_on_the_registrys_datasets():
    """The slider, traversal and surface figures run what the app's handlers run; every dataset the
    registry marks for a figure has what that figure needs."""
    pytest.importorskip("gradio")
    import torch

    from arvae import registry

    threads = torch.get_num_threads()
    try:
        explorers = bench.load_explorers(bench.ROOT / "checkpoints")
    finally:
        torch.set_num_threads(threads)  # the benchmark sets torch's threads as the app does
    assert bench.keys_for("slider") and bench.keys_for("traversal") and bench.keys_for("surface")
    for key in bench.keys_for("surface"):
        attribute, other = registry.get(key).benchmark["surface"]
        assert attribute in registry.get(key).attribute_names and 0 <= other < registry.get(key).latent_dim
    for key in bench.keys_for("traversal"):
        tab, view = bench.tab_of(explorers[key])
        assert callable(view.show_traversal) and tab.key == key
    codes = bench.fresh_codes(explorers["mnist"], "arvae", 3)
    assert len({c.tobytes() for c in codes}) == 3  # new codes: the explorer's caches never answer
    results = bench.Results()
    bench.bench_slider(results, explorers, bench.keys_for("slider")[0], 2)
    assert [f["stat"] for f in results.figures] == ["p50", "p95"] and results.figures[0]["value"] > 0
    results = bench.Results()
    bench.bench_surface(results, explorers, "folk", 1)
    surface, floor = results.figures
    assert surface["name"] == "surface_ms" and surface["value"] > 0 and surface["target"] == "<= 500"
    # the floor: CPU time of decoding and of measuring the plane alone, over the cores; no target
    assert floor["name"] == "surface_cpu_floor_ms" and floor["target"] is None
    detail = floor["detail"]
    assert detail["decode_cpu_ms"] > 0 and detail["cores"] >= 1
    assert floor["value"] == pytest.approx((detail["decode_cpu_ms"] + detail["measure_cpu_ms"]) / detail["cores"],
                                           abs=0.1)
