"""Benchmark of the interactive paths and of training: one run, every figure with its target.

    python benchmarks/bench.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench.py --quick    # fewer repetitions and items (well under 2 minutes)
    python benchmarks/bench.py --mnist-dir /path/to/mnist --json results.json

It prints the machine, a table (figure, value, target, pass) and then one JSON object per figure,
``{"name": ..., "value": ..., "unit": ..., "target": ..., "pass": ...}`` (plus ``dataset`` /
``stat`` / ``detail`` where useful). Interactive figures time, in process, what the app's handlers
run, through public functions only: :func:`arvae.explorer.explorers` (the app's explorer core and
model store) and the functions that draw its answers (:mod:`arvae.images`, :mod:`arvae.figures`,
:mod:`arvae.music`; the music traversal handler itself is the tab's music view), its caches bypassed
by using a new latent code for every repetition. Which datasets each figure runs on is the
registry's ``benchmark`` field. The app's start and memory are measured on ``python app.py`` in a
subprocess.

Figures (targets for a 2-core CPU machine, from the issue):

* ``slider_latency_ms`` (sprites, MNIST; p50 <= 30, p95 reported): one slider change -> the decoded
  image encoded as PNG (the handler also measures the image's attributes for its table);
* ``music_traversal_ms`` (folk, Bach; <= 400): 4 attributes x 9 steps decoded and measured, the
  piano-roll figure, the audio of the four traversals; ``music_traversal_handler_ms`` adds what the
  app's handler also does (the WAV files; <= 200, issue 15); ``music_traversal_scores_ms`` is what
  opening the notation panel then costs (notation SVG, MIDI/MusicXML downloads; no target);
* ``surface_ms`` (32 x 32; MNIST <= 400: 1,024 decodes + morphometrics + figure; folk <= 500);
* ``morphometrics_per_s`` (>= 1,000 on decoded digits) and ``morphometrics_pearson_r`` (>= 0.98,
  the lowest over the six attributes, of the fast path against the reference at scale 4, on real
  digits: the first 1,000 test digits of ``--mnist-dir`` / ``$ARVAE_MNIST_DIR`` when given, else the
  ~330 that ship; and on decoded digits);
* ``music_attributes_per_s`` (>= 1,000,000, on 100k measures);
* ``train_samples_per_s`` per dataset model (CPU float32 on all cores; with CUDA also float32 and
  bfloat16 autocast on the GPU), optimizer steps on synthetic batches of the right shapes;
* ``app_cold_start_s`` (<= 3: ``python app.py`` to the first HTTP 200 of ``/``), beside it
  ``gradio_import_s`` (no target: ``import gradio`` alone in a fresh interpreter, the floor under
  the cold start) and
  ``app_peak_rss_mb`` (<= 2,048 MiB: peak resident memory of the app's processes after loading
  both models of all four tabs through the API and computing an MNIST surface and a folk traversal).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages

from arvae.hardware import cpu_name  # noqa: E402

TARGETS = {  # name -> (comparison, target)
    "slider_latency_ms": ("<=", 30.0),
    "music_traversal_ms": ("<=", 400.0),
    "music_traversal_handler_ms": ("<=", 200.0),  # issue 15: the whole handler (notation and files: when opened)
    "surface_ms:mnist": ("<=", 400.0),  # issue 15
    "surface_ms:folk": ("<=", 500.0),
    "morphometrics_per_s": (">=", 1000.0),
    "morphometrics_pearson_r": (">=", 0.98),
    "music_attributes_per_s": (">=", 1_000_000.0),
    "app_cold_start_s": ("<=", 3.0),  # issue 15
    "app_peak_rss_mb": ("<=", 2048.0),  # issue 15: the app and its worker processes
}


# ------------------------------------------------------------------------------------ results

class Results:
    def __init__(self):
        self.figures: list[dict] = []

    def add(self, name: str, value, unit: str, dataset: str | None = None, stat: str | None = None,
            target_key: str | None = None, detail=None, has_target: bool = True) -> dict:
        key = target_key or (f"{name}:{dataset}" if f"{name}:{dataset}" in TARGETS else name)
        comparison, target = TARGETS.get(key, (None, None)) if has_target else (None, None)
        figure = {"name": name}
        if dataset is not None:
            figure["dataset"] = dataset
        if stat is not None:
            figure["stat"] = stat
        figure.update(value=_round(value), unit=unit,
                      target=f"{comparison} {_format_target(target)}" if target is not None else None)
        if target is not None and value is not None and math.isfinite(value):
            figure["pass"] = bool(value <= target if comparison == "<=" else value >= target)
        elif target is not None:
            figure["pass"] = False
        if detail is not None:
            figure["detail"] = detail
        self.figures.append(figure)
        print(f"  {_label(figure)}: {_format(figure['value'], unit)} {unit}"
              + (f"  (target {figure['target']}: {'pass' if figure.get('pass') else 'FAIL'})" if target is not None
                 else ""), flush=True)
        return figure

    def failed(self, name: str, error: BaseException, dataset: str | None = None):
        figure = {"name": name, **({"dataset": dataset} if dataset else {}), "value": None, "unit": None,
                  "target": None, "error": f"{type(error).__name__}: {error}"}
        key = f"{name}:{dataset}" if f"{name}:{dataset}" in TARGETS else name
        if key in TARGETS:
            comparison, target = TARGETS[key]
            figure["target"], figure["pass"] = f"{comparison} {_format_target(target)}", False
        self.figures.append(figure)
        print(f"  {_label(figure)}: not measured ({figure['error']})", flush=True)


def _format_target(target: float) -> str:
    return f"{target:,.0f}" if target >= 1000 else f"{target:g}"


def _round(value):
    if value is None or not isinstance(value, (int, float, np.floating, np.integer)):
        return value
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, 5) if abs(value) < 10 else round(value, 1)


def _format(value, unit: str | None = None) -> str:
    if value is None:
        return "—"
    if unit == "r":
        return f"{value:.4f}"
    return f"{value:.5g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.1f}"


def _label(figure: dict) -> str:
    extras = [figure[k] for k in ("dataset", "stat") if figure.get(k)]
    return figure["name"] + (f" [{', '.join(extras)}]" if extras else "")


def _cpu_note(figure: dict) -> str:
    detail = figure.get("detail")
    if not isinstance(detail, dict):
        return ""
    if "cpu_ms_each" in detail:
        return f"{detail['cpu_ms_each']:,.0f} ms"
    if "cpu_ms_per_digit" in detail:
        return f"{detail['cpu_ms_per_digit']:.2f} ms/digit"
    return ""


def table(results: Results) -> str:
    """Markdown table; "CPU time" is the process's CPU time behind a wall-clock figure (all threads):
    on a busy machine the wall time also counts the waits for a core."""
    rows = [("figure", "value", "unit", "target", "pass", "CPU time")]
    for f in results.figures:
        value = _format(f.get("value"), f.get("unit")) if f.get("value") is not None else "not measured"
        rows.append((_label(f), value, f.get("unit") or "", f.get("target") or "", "" if "pass" not in f else
                     ("pass" if f["pass"] else "FAIL"), _cpu_note(f)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["| " + " | ".join(r[i].ljust(widths[i]) if i != 1 else r[i].rjust(widths[i]) for i in range(6)) + " |"
             for r in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ machine

def machine() -> dict:
    import torch

    cpu = cpu_name()
    info = {"cpu": cpu, "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads_interactive": int(os.environ.get("ARVAE_TORCH_THREADS", "1")),
            "python": platform.python_version(), "platform": platform.platform(terse=True)}
    try:
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    from arvae import traversal

    info["native_bf16"] = traversal.native_bf16()
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


# ------------------------------------------------------------------------------------ helpers

def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


class CpuClock:
    """CPU seconds this process spent (all its threads) while timing: on a busy machine the wall
    time also counts the waits for a core; the CPU time shows the work itself."""

    def __init__(self):
        self.start = time.process_time()

    def per(self, count: int, scale: float = 1000.0) -> float:
        return round((time.process_time() - self.start) / max(count, 1) * scale, 3)


def load_explorers(root: Path) -> dict:
    """The app's explorer core for every dataset (one model store), with torch's threads as the
    app sets them ($ARVAE_TORCH_THREADS, default 1)."""
    import torch

    from arvae.explorer import explorers

    torch.set_num_threads(max(1, int(os.environ.get("ARVAE_TORCH_THREADS", "1"))))
    return explorers(root)


def keys_for(figure: str) -> list[str]:
    """The datasets the registry marks for ``figure`` (its ``benchmark`` field)."""
    from arvae import registry

    return [key for key, spec in registry.DATASETS.items() if spec.benchmark.get(figure)]


def fresh_codes(ctx, kind: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` latent codes nobody has asked for yet (held-out encodings, nudged), so that the
    app's per-code caches never answer."""
    rng = np.random.default_rng(seed)
    codes = []
    n = len(ctx.samples) if ctx.has_samples else 0
    for i in range(count):
        if n:
            z = ctx.encode(kind, ctx.samples.inputs[(7 * i + seed) % n]).copy()
        else:
            z = rng.standard_normal(ctx.latent_dim).astype(np.float32)
        z += rng.normal(0, 1e-3, z.shape).astype(np.float32)
        codes.append(z)
    return codes


# ------------------------------------------------------------------------------------ figures

def tab_of(ctx):
    """The tab's view of dataset ``ctx`` (what its handlers call to show an answer)."""
    from arvae.ui import VIEWS
    from arvae.ui.tab import Tab

    view = VIEWS[ctx.spec.domain](ctx)
    return Tab(ctx, view), view


def bench_slider(results: Results, explorers: dict, key: str, calls: int):
    """One slider change, as the tab's slider handler runs it: compose the code, decode, measure the
    image for the attribute table (the view's ``show_decoded``); and the PNG Gradio sends."""
    from arvae.explorer import format_z
    from arvae.images import png_bytes

    ctx = explorers[key]
    tab, view = tab_of(ctx)
    kind = "arvae"
    z0 = fresh_codes(ctx, kind, 1, seed=11)[0]
    dims = ctx.slider_dims(kind)
    z_text = format_z(z0)
    values = np.round(np.linspace(-3.0, 3.0, calls + 3), 2)  # a drag of the first attribute's slider

    def change(value):
        attribute_values = [float(z0[d]) if d is not None else None for d in dims]
        attribute_values[0] = float(value)
        code = ctx.compose(kind, z_text, attribute_values, [float(v) for v in z0])
        image, _ = view.show_decoded(tab, kind, code, ctx.decode(kind, code))
        return image if isinstance(image, str) else png_bytes(image)  # the view writes the PNG, or the array

    for value in values[:3]:  # warm-up: model load, oneDNN primitives
        change(value)
    latencies = [timed(change, value)[0] * 1000 for value in values[3:]]
    results.add("slider_latency_ms", percentile(latencies, 50), "ms", key, "p50",
                detail={"changes": len(latencies)})
    results.add("slider_latency_ms", percentile(latencies, 95), "ms", key, "p95", has_target=False)


def bench_music_traversal(results: Results, explorers: dict, key: str, reps: int):
    """4 attributes x 9 steps decoded and measured, the piano-roll figure (Fig. 11) and the audio
    of the four traversals; then all the tab's traversal handler shows (the view's
    ``show_traversal``: also the WAV files), and what opening the notation panel adds (the view's
    ``show_scores``: notation SVG, MIDI and MusicXML files of the four traversals)."""
    from arvae.music.audio import synthesize
    from arvae.music.pianoroll import music_traversal_figure

    ctx = explorers[key]
    tab, view = tab_of(ctx)
    kind, steps = "arvae", 9
    names = ctx.spec.attribute_names

    def core(z):
        tr = ctx.traverse(kind, z, steps)
        music_traversal_figure(tr.decoded, tr.values, tr.measured, names, tr.dims)
        return [synthesize(tr.decoded[l], tempo=ctx.spec.input.tempo) for l in range(len(names))]

    def full(z):
        return view.show_traversal(tab, kind, ctx.traverse(kind, z, steps))

    def scores(z):
        return view.show_scores(tab, kind, z, steps)

    codes = fresh_codes(ctx, kind, 2 * reps + 2, seed=3)
    core(codes[0])
    full(codes[1])
    scores(codes[1])
    clock = CpuClock()
    times = [timed(core, z)[0] * 1000 for z in codes[2:2 + reps]]
    results.add("music_traversal_ms", percentile(times, 50), "ms", key, "p50",
                detail={"repetitions": reps, "min_ms": round(min(times), 1), "cpu_ms_each": clock.per(reps)})
    times = [timed(full, z)[0] * 1000 for z in codes[2 + reps:]]
    results.add("music_traversal_handler_ms", percentile(times, 50), "ms", key, "p50",
                detail="figure and WAV files; notation and MIDI/MusicXML follow when their panel is open")
    times = [timed(scores, z)[0] * 1000 for z in codes[2 + reps:]]  # the traversals just made: as in the app
    results.add("music_traversal_scores_ms", percentile(times, 50), "ms", key, "p50", has_target=False,
                detail="opening the notation panel: notation SVG and MIDI/MusicXML files of the 4 traversals")


def bench_surface(results: Results, explorers: dict, key: str, reps: int):
    """A 32 x 32 attribute surface and its figure, as the surface handler computes them; the
    attribute and the other dim are the registry's ``benchmark["surface"]``."""
    from arvae import traversal
    from arvae.figures import surface_figure

    ctx = explorers[key]
    attribute, other_dim = ctx.spec.benchmark["surface"]
    kind = "arvae"

    def surface(z, resolution):
        values, dim_x, dim_y = ctx.surface(kind, z, attribute, other_dim, resolution)
        return surface_figure(values, traversal.traversal_values(resolution), attribute, dim_x, dim_y,
                              current=(z[dim_x], z[dim_y]))

    codes = fresh_codes(ctx, kind, reps + 1, seed=5)
    surface(codes[0], 8)  # warm-up at a small resolution
    clock = CpuClock()
    times = [timed(surface, z, 32)[0] * 1000 for z in codes[1:]]
    results.add("surface_ms", percentile(times, 50), "ms", key, "32x32",
                detail={"repetitions": reps, "min_ms": round(min(times), 1), "cpu_ms_each": clock.per(reps),
                        "attribute": attribute,
                        "decode_precision": traversal.surface_precision(ctx.model(kind))})

    # the work itself, each half alone: what the surface's wall time cannot go below on this machine
    import torch

    model, precision = ctx.model(kind), traversal.surface_precision(ctx.model(kind))
    index = list(ctx.spec.attribute_names).index(attribute)
    measure = traversal.surface_measure(ctx.spec.measure, index)
    dims, _ = ctx.attribute_dims(kind)
    decode_cpu, measure_cpu = [], []
    for z in codes[1:]:
        latents = traversal.surface_latents(torch.from_numpy(z), int(dims[index]), other_dim, 32)
        clock = CpuClock()
        decoded = traversal.decode(model, latents, precision=precision)
        decode_cpu.append(clock.per(1))
        clock = CpuClock()
        with np.errstate(all="ignore"):
            measure(decoded)
        measure_cpu.append(clock.per(1))
    cores = os.cpu_count() or 1
    decode_ms, measure_ms = percentile(decode_cpu, 50), percentile(measure_cpu, 50)
    results.add("surface_cpu_floor_ms", (decode_ms + measure_ms) / cores, "ms", key, "32x32", has_target=False,
                detail={"decode_cpu_ms": round(decode_ms, 1), "measure_cpu_ms": round(measure_ms, 1), "cores": cores,
                        "meaning": "CPU time of decoding and of measuring the plane, divided by the cores"})


def real_digits(mnist_dir: str | None, limit: int) -> tuple[np.ndarray, str]:
    """Up to ``limit`` real MNIST digits: the test file of ``mnist_dir`` when there is one, else the
    digits that ship (the held-out sample and the test fixture)."""
    from arvae.data.mnist import read_idx

    if mnist_dir:
        folder = Path(mnist_dir)
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte",
                     "train-5k-images-idx3-ubyte.gz"):
            if (folder / name).is_file():
                images = read_idx(folder / name)[:limit]
                return images, f"{len(images)} digits of {folder / name}"
    parts, sources = [], []
    for path, field in ((ROOT / "checkpoints" / "mnist" / "samples.npz", "inputs"),
                        (ROOT / "tests" / "fixtures" / "mnist_digits.npz", "images")):
        if path.is_file():
            parts.append(np.load(path)[field])
            sources.append(str(path.relative_to(ROOT)))
    images = np.unique(np.concatenate(parts), axis=0) if parts else np.zeros((0, 28, 28), np.uint8)
    images = images[:limit]
    return images, f"{len(images)} shipped digits ({', '.join(sources)})"


def pearson_per_attribute(fast: np.ndarray, exact: np.ndarray) -> dict:
    from arvae.morphometrics import ATTRIBUTE_NAMES

    out = {}
    for j, name in enumerate(ATTRIBUTE_NAMES):
        ok = np.isfinite(fast[:, j]) & np.isfinite(exact[:, j])
        out[name] = round(float(np.corrcoef(fast[ok, j], exact[ok, j])[0, 1]), 5) if ok.sum() > 2 else None
    return out


def bench_morphometrics(results: Results, explorers: dict, key: str, mnist_dir: str | None, n_decoded: int, n_real: int, reps: int):
    """The registry's measure of decoded digits (``morphometrics.measure_decoded``: the fast path,
    as the app and the evaluation call it) and its agreement with the reference (scale 4)."""
    import torch

    from arvae import morphometrics, traversal

    ctx = explorers[key]
    model = ctx.model("arvae")
    rng = np.random.default_rng(0)
    held_out = traversal.encode(model, ctx.samples.model_inputs()).numpy()
    z = np.concatenate([held_out, rng.standard_normal((n_decoded, ctx.latent_dim)).astype(np.float32)])[:n_decoded]
    decoded = traversal.decode(model, torch.from_numpy(z))
    measure = ctx.spec.measure
    measure(decoded[:16])
    clock = CpuClock()
    rates = [len(decoded) / timed(measure, decoded)[0] for _ in range(reps)]
    results.add("morphometrics_per_s", percentile(rates, 50), "digits/s", "decoded",
                detail={"digits": len(decoded), "threads": morphometrics.default_workers(),
                        "cpu_ms_per_digit": clock.per(reps * len(decoded)),
                        "path": "morphometrics.measure_fast (registry measure)"})
    reference = decoded[:max(64, n_decoded // 8)]
    seconds, exact_decoded = timed(morphometrics.measure, reference)
    results.add("morphometrics_reference_per_s", len(reference) / seconds, "digits/s", "decoded",
                has_target=False, detail={"digits": len(reference), "path": "morphometrics.measure (reference)"})

    images, source = real_digits(mnist_dir, n_real)
    exact = morphometrics.measure(images)
    fast = measure(images)
    per_attribute = pearson_per_attribute(fast, exact)
    results.add("morphometrics_pearson_r", min(v for v in per_attribute.values() if v is not None), "r",
                "real digits", "min over attributes", detail={"per_attribute": per_attribute, "digits": source})
    per_attribute = pearson_per_attribute(measure(reference), exact_decoded)
    results.add("morphometrics_pearson_r", min(v for v in per_attribute.values() if v is not None), "r",
                "decoded digits", "min over attributes",
                detail={"per_attribute": per_attribute, "digits": f"{len(reference)} decoded digits"})


def bench_music_attributes(results: Results, n: int, reps: int):
    from arvae import samples as samples_mod
    from arvae.music import attributes
    from arvae.music.tokens import VOCAB_SIZE

    rng = np.random.default_rng(0)
    parts = []
    for key in keys_for("traversal"):
        try:
            parts.append(samples_mod.load_samples(key).inputs.astype(np.int64))
        except Exception:
            pass
    tokens = rng.integers(0, VOCAB_SIZE, (n, 24)).astype(np.int64)
    tokens[rng.random(tokens.shape) < 0.6] = 0  # holds, as in real measures
    if parts:  # half of them the shipped held-out measures, repeated
        real = np.concatenate(parts)
        half = np.tile(real, (n // 2 // len(real) + 1, 1))[: n // 2]
        tokens[: len(half)] = half
    attributes.measure(tokens[:1000])
    rates = [n / timed(attributes.measure, tokens)[0] for _ in range(reps)]
    results.add("music_attributes_per_s", percentile(rates, 50), "measures/s", detail={"measures": n,
                "dtype": "int64 (as decoded)"})


def bench_training(results: Results, steps: int, devices):
    """Optimizer steps on synthetic batches of each dataset's shapes and batch size, in the layout
    train.py uses (channels-last image models), per device and precision; then, per device, how much
    faster bf16 autocast trains than fp32 (``train_bf16_speedup``)."""
    import torch

    from arvae import registry
    from arvae.losses import arvae_objective

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # train.py runs with torch's default (all cores)
    try:
        for spec in registry.DATASETS.values():
            rates = {}
            for device, precision in devices:
                generator = torch.Generator().manual_seed(0)
                model = spec.model_class(**spec.model_kwargs).to(device, memory_format=spec.model_class.memory_format)
                model.train()
                optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
                batch = spec.batch_size
                shape = (batch, *spec.input.shape)
                if "vocab_size" in spec.model_kwargs:  # tokens
                    inputs = torch.randint(0, spec.model_kwargs["vocab_size"], shape, generator=generator)
                else:  # binary-ish images, uint8 as the data modules hold them
                    inputs = (torch.rand(shape, generator=generator) > 0.7).to(torch.uint8) * 255
                attributes = torch.rand(batch, len(spec.attribute_names), generator=generator)
                inputs, attributes = inputs.to(device), attributes.to(device)

                def step():
                    autocast = (torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16"
                                else contextlib.nullcontext())
                    with autocast:
                        terms = arvae_objective(model, inputs, attributes, spec.regularized_dims, spec.beta,
                                                spec.gamma, spec.delta)
                    optimizer.zero_grad(set_to_none=True)
                    terms.total.backward()
                    optimizer.step()
                    if device == "cuda":
                        torch.cuda.synchronize()

                step()
                seconds = sum(timed(step)[0] for _ in range(steps))
                rates[device, precision] = batch * steps / seconds
                results.add("train_samples_per_s", batch * steps / seconds, "samples/s", spec.key,
                            f"{device} {precision}", has_target=False,
                            detail={"batch_size": batch, "steps": steps,
                                    "threads": torch.get_num_threads() if device == "cpu" else None})
            for device in dict.fromkeys(device for device, _ in devices):
                if (device, "fp32") in rates and (device, "bf16") in rates:
                    results.add("train_bf16_speedup", rates[device, "bf16"] / rates[device, "fp32"], "x", spec.key,
                                device, has_target=False)
    finally:
        torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the app's worker processes), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _peak_rss_kb(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _import_seconds(module: str) -> float:
    """Wall seconds of ``python -c "import <module>"`` in a fresh interpreter (after the app has
    stopped; its files are in the page cache as they were for the app)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True,
                   env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    return time.perf_counter() - start


def bench_app_process(results: Results, root: Path, timeout: float = 180.0):
    """``python app.py`` in a subprocess: seconds to the first HTTP 200 of ``/``; then every tab's
    models loaded through the API, an MNIST surface and a folk traversal, and the peak RSS."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "ARVAE_CHECKPOINTS": str(root), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            cold = None
            while time.perf_counter() - start < timeout:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"app.py exited with {process.returncode}: {log.read()[-2000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            cold = time.perf_counter() - start
                            break
                except OSError:
                    time.sleep(0.05)
            if cold is None:
                raise TimeoutError(f"app.py did not serve {url} within {timeout:.0f} s")
            results.add("app_cold_start_s", cold, "s", detail="python app.py -> first HTTP 200 of /")
            try:
                from gradio_client import Client

                client = Client(url, verbose=False)
                loaded = []
                from arvae import registry

                for key in registry.DATASETS:
                    for kind in registry.MODEL_KINDS:
                        client.predict(kind, 0, api_name=f"/{key}_prior")
                        loaded.append(f"{key}/{kind}")
                from gradio_client import handle_file

                image = client.predict(0, api_name="/mnist_example")
                z = client.predict(handle_file(image), "arvae", api_name="/mnist_encode")[1]
                client.predict("arvae", z, "thickness", 7, 32, api_name="/mnist_surface")
                tokens = client.predict(0, api_name="/folk_example")
                z = client.predict(tokens, "arvae", api_name="/folk_encode")[0]
                client.predict("arvae", z, 9, api_name="/folk_traverse")
                rss = _peak_rss_kb(process.pid) / 1024
                results.add("app_peak_rss_mb", rss, "MiB", detail={
                    "models_loaded": loaded, "then": "an MNIST 32x32 surface and a folk traversal",
                    "processes": len(process_tree(process.pid))})
            except Exception as error:  # noqa: BLE001
                results.failed("app_peak_rss_mb", error)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    results.add("gradio_import_s", _import_seconds("gradio"), "s",
                detail="python -c 'import gradio': the part of the cold start that is Gradio's own import")


# ------------------------------------------------------------------------------------ main

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and items (well under 2 minutes)")
    parser.add_argument("--mnist-dir", default=os.environ.get("ARVAE_MNIST_DIR") or None,
                        help="an MNIST folder whose test digits check the morphometrics' agreement "
                             "(default $ARVAE_MNIST_DIR; without one, the ~330 digits that ship)")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the app's)")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of: slider,music,surface,morphometrics,attributes,train,app")
    parser.add_argument("--json", dest="json_path", help="also write {machine, figures} to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from arvae import samples as samples_mod

    root = samples_mod.checkpoints_root(args.checkpoints)
    parts = set((args.only or "slider,music,surface,morphometrics,attributes,train,app").split(","))
    quick = args.quick
    began = time.perf_counter()
    info = machine()
    print("machine: " + json.dumps(info), flush=True)
    results = Results()

    def run(name, fn, *fn_args, dataset=None):
        try:
            fn(*fn_args)
        except Exception as error:  # noqa: BLE001  a figure that cannot be measured is reported, not fatal
            results.failed(name, error, dataset)

    explorers = None
    if parts & {"slider", "music", "surface", "morphometrics"}:
        seconds, explorers = timed(load_explorers, root)
        print(f"(explorer core built in process in {seconds:.1f} s)", flush=True)
    if "slider" in parts:
        for key in keys_for("slider"):
            run("slider_latency_ms", bench_slider, results, explorers, key, 30 if quick else 100, dataset=key)
    if "music" in parts:
        for key in keys_for("traversal"):
            run("music_traversal_ms", bench_music_traversal, results, explorers, key, 3 if quick else 7, dataset=key)
    if "surface" in parts:
        for key in keys_for("surface"):
            run("surface_ms", bench_surface, results, explorers, key, 1 if quick else 3, dataset=key)
    if "morphometrics" in parts:
        for key in keys_for("morphometrics"):
            run("morphometrics_per_s", bench_morphometrics, results, explorers, key, args.mnist_dir,
                512 if quick else 1024, 300 if quick else 1000, 1 if quick else 3)
    if "attributes" in parts:
        run("music_attributes_per_s", bench_music_attributes, results, 100_000, 3 if quick else 7)
    if "train" in parts:
        import torch

        devices = [("cpu", "fp32"), ("cpu", "bf16")]  # train.py --precision: one run compares them
        if torch.cuda.is_available():
            devices += [("cuda", "fp32"), ("cuda", "bf16")]
        run("train_samples_per_s", bench_training, results, 2 if quick else 5, devices)
    if "app" in parts:
        run("app_cold_start_s", bench_app_process, results, root)

    print(f"\nAR-VAE Explorer benchmark ({'quick' if quick else 'full'} run, {time.perf_counter() - began:.0f} s) on "
          f"{info['cpu']}, {info['logical_cores']} logical cores, torch {info['torch']}"
          + (f", load average at start {info['load_average_at_start'][0]}" if "load_average_at_start" in info else ""))
    print(table(results))
    print()
    print(json.dumps({"name": "machine", **info}))
    for figure in results.figures:
        print(json.dumps(figure))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"machine": info, "quick": quick, "figures": results.figures},
                                                   indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
