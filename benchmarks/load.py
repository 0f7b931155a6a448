"""Load test of the app: many concurrent visitors doing mixed requests over Gradio's REST API.

    python benchmarks/load.py                          # launches app.py on a free port, 16 clients x 25 requests
    python benchmarks/load.py --clients 4 --requests 5 --json load.json
    python benchmarks/load.py --url http://127.0.0.1:7860/ --pid 1234    # an app that is already running

Every client (a thread, a :class:`RestClient`, which downloads each answer's files) does ``--requests`` requests drawn from
a fixed mix (seeded): a slider move (``/mnist_decode`` or ``/sprites_decode`` of a random latent
code, the light queue), a music traversal with its four WAVs (``/folk_traverse`` or
``/bach_traverse``, heavy) and an attribute surface (``/mnist_surface`` or ``/folk_surface``, heavy).
Each answer is checked (the PNG / WAV / plot is there), so a malformed answer counts as an error.

Reported: errors, p50/p95/max latency per action (client side: queueing included), the slider
latency of the requests that overlapped a running heavy request, the CPU time the app used, and its
resident memory (``/proc/<pid>/status`` VmRSS; Linux): at start, after the warm-up (every action
done twice, then one unrecorded concurrent round of two requests per client: models loaded, caches
and worker threads in their steady state), at the end of the run, and -- the growth figure -- after
the warm-up and after the run each followed by ``--settle`` seconds idle (the app hands freed memory
back every 10 s); all of it for the app's process and its worker processes (``--workers N`` sets
their number, ``ARVAE_WORKERS``), and the app's CPU use in cores (CPU seconds / wall seconds of the
run). ``--check`` exits with 1 unless issue 15's targets are met: no error, slider p95 <= 250 ms
while heavy requests run, music traversal and surface p95 <= 4 s, >= 1.6 cores, RSS growth <= 10 %
and peak RSS <= 2 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages

from arvae import registry  # noqa: E402
from benchmarks.bench import keys_for, process_tree  # noqa: E402
from arvae.hardware import cpu_name  # noqa: E402

SLIDER_KEYS, TRAVERSE_KEYS, SURFACE_KEYS = keys_for("slider"), keys_for("traversal"), keys_for("surface")
SLIDER, TRAVERSE, SURFACE = "slider", "music traversal", "surface"
MIX = ((SLIDER, 0.5), (TRAVERSE, 0.25), (SURFACE, 0.25))
HEAVY = (TRAVERSE, SURFACE)
TARGET_SLIDER_P95_S = 0.25  # issue 15's targets (2-core machine)
TARGET_HEAVY_P95_S = 4.0
TARGET_CORES = 1.6
TARGET_RSS_GROWTH = 0.10
TARGET_PEAK_RSS_MB = 2048


# ------------------------------------------------------------------------------------ the app

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of the app (process ``pid`` and its workers; Linux), or None.
    Workers replaced during the run take their CPU time with them: a lower bound then."""
    if pid is None or _stat_fields(pid) is None:
        return None
    total = 0.0
    for member in process_tree(pid):
        if fields := _stat_fields(member):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def client_cpu_s() -> float:
    """User + system CPU seconds of this process: the load generator's clients (all its threads)."""
    usage = os.times()
    return usage.user + usage.system


def machine_busy_s() -> float | None:
    """CPU seconds all cores spent busy since boot (``/proc/stat``; Linux), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal, not guest (counted in user)


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of the app and its workers, in MB (Linux), or None."""
    if pid is None or _stat_fields(pid) is None:
        return None
    total = 0
    for member in process_tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total / 2**20


def launch_app(checkpoints: Path | None, log_path: Path, timeout: float = 180.0, workers: int | None = None):
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    if workers is not None:
        env["ARVAE_WORKERS"] = str(workers)
    if checkpoints is not None:
        env["ARVAE_CHECKPOINTS"] = str(checkpoints)
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"app.py did not answer on {url} within {timeout:.0f} s; see {log_path}")


# ------------------------------------------------------------------------------------ requests

def z_text(rng, key: str) -> str:
    return json.dumps([round(float(v), 3) for v in rng.normal(0.0, 1.5, registry.get(key).latent_dim)])


def pick(rng, keys: list[str]) -> str:
    return keys[min(int(rng.random() * len(keys)), len(keys) - 1)]


def surface_args(key: str) -> tuple[str, int]:
    """The registry's benchmark attribute, and the last dim as the other one: never an attribute's
    dim for AR-VAE (0..L-1); for the beta-VAE the app says when it is."""
    return registry.get(key).benchmark["surface"][0], registry.get(key).latent_dim - 1


def check_png(data: bytes) -> None:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"not a PNG: {data[:16]!r}")


def check_plot(value) -> None:
    if not (isinstance(value, dict) and value.get("type") == "plotly" and "heatmap" in value.get("plot", "")):
        raise AssertionError(f"not a heatmap: {str(value)[:120]}")


class RestClient:
    """A visitor over Gradio's REST API (``POST /gradio_api/call/<name>``, then its event stream),
    downloading every file of an answer as a browser would. Far lighter than ``gradio_client``: with
    16 of those in this process the clients took 1.7 of the machine's 2 cores (the app 0.4) and
    their own contention became most of the measured latency."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session_hash = os.urandom(8).hex()  # one session per visitor, as a browser tab has

    def predict(self, *args, api_name: str):
        request = urllib.request.Request(f"{self.url}/gradio_api/call{api_name}", method="POST",
                                         data=json.dumps({"data": list(args), "session_hash": self.session_hash}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            event_id = json.loads(response.read())["event_id"]
        event = None
        with urllib.request.urlopen(f"{self.url}/gradio_api/call{api_name}/{event_id}", timeout=120) as stream:
            for line in stream:
                line = line.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[len("data: "):])
                    if event == "error":
                        raise RuntimeError(f"{api_name}: {data}")
                    outputs = [self._fetch(value) for value in data]
                    return outputs[0] if len(outputs) == 1 else outputs
        raise RuntimeError(f"{api_name}: the event stream ended without an answer")

    def _fetch(self, value):
        """A file output -> its bytes (downloaded); anything else as it came."""
        if isinstance(value, dict) and value.get("url") and (value.get("meta") or {}).get("_type") == "gradio.FileData":
            with urllib.request.urlopen(value["url"], timeout=120) as response:
                return response.read()
        return value


def do_request(client, action: str, rng) -> str:
    """One request of ``action``; returns the endpoint used. Raises on an error or a malformed answer."""
    model = "arvae" if rng.random() < 0.75 else "beta-vae"
    if action == SLIDER:
        key = pick(rng, SLIDER_KEYS)
        image, table = client.predict(model, z_text(rng, key), api_name=f"/{key}_decode")
        check_png(image)
        if "measured" not in table:
            raise AssertionError("no attribute table")
        return f"/{key}_decode"
    if action == TRAVERSE:
        key = pick(rng, TRAVERSE_KEYS)
        figure, *rest = client.predict(model, z_text(rng, key), 9, api_name=f"/{key}_traverse")
        wavs = rest[:4]
        if figure.get("type") != "plotly" or len(wavs) != 4 or any(len(w) < 1000 or w[:4] != b"RIFF" for w in wavs):
            raise AssertionError("traversal answer without its plot or four WAVs")
        return f"/{key}_traverse"
    key = pick(rng, SURFACE_KEYS)
    attribute, other = surface_args(key)
    try:
        check_plot(client.predict(model, z_text(rng, key), attribute, other, 16, api_name=f"/{key}_surface"))
    except Exception as error:
        if model == "beta-vae" and "differ" in str(error):  # beta-VAE's MI dim happened to be the last one
            check_plot(client.predict("arvae", z_text(rng, key), attribute, other, 16, api_name=f"/{key}_surface"))
        else:
            raise
    return f"/{key}_surface"


def schedule(rng, n: int, mix=MIX) -> list[str]:
    names, weights = zip(*mix)
    return list(rng.choice(names, size=n, p=np.array(weights) / sum(weights)))


def warm_up(url: str, clients: int) -> None:
    client = RestClient(url)
    rng = np.random.default_rng(12345)
    for _ in range(2):
        for key in SLIDER_KEYS:
            for model in registry.MODEL_KINDS:
                client.predict(model, z_text(rng, key), api_name=f"/{key}_decode")
        for key in TRAVERSE_KEYS:
            for model in registry.MODEL_KINDS:
                client.predict(model, z_text(rng, key), 9, api_name=f"/{key}_traverse")
        for key in SURFACE_KEYS:
            client.predict("arvae", z_text(rng, key), *surface_args(key), 16, api_name=f"/{key}_surface")
    run_load(url, clients, 2, seed=999)  # worker threads and their memory in the steady state


def run_load(url: str, clients: int, requests: int, seed: int = 0, mix=MIX) -> list[dict]:
    records: list[dict] = []
    lock = threading.Lock()
    connected = [RestClient(url) for _ in range(clients)]
    barrier = threading.Barrier(clients)

    def visitor(index: int) -> None:
        rng = np.random.default_rng(seed * 1000 + index)
        plan = schedule(rng, requests, mix)
        barrier.wait()
        for action in plan:
            started = time.monotonic()
            error, endpoint = None, None
            try:
                endpoint = do_request(connected[index], action, rng)
            except Exception as exc:  # record and go on: every error is reported
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            with lock:
                records.append({"client": index, "action": action, "endpoint": endpoint, "start": started,
                                "end": time.monotonic(), "error": error})

    threads = [threading.Thread(target=visitor, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records


# ------------------------------------------------------------------------------------ report

def percentile(values, q) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(records: list[dict]) -> dict:
    heavy = [(r["start"], r["end"]) for r in records if r["action"] in HEAVY and not r["error"]]
    rows = {}
    for action in [name for name, _ in MIX]:
        done = [r for r in records if r["action"] == action]
        latencies = [r["end"] - r["start"] for r in done if not r["error"]]
        rows[action] = {"requests": len(done), "errors": sum(1 for r in done if r["error"]),
                        "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
                        "max_s": max(latencies) if latencies else None}
    overlapped = [r["end"] - r["start"] for r in records if r["action"] == SLIDER and not r["error"]
                  and any(s < r["end"] and r["start"] < e for s, e in heavy)]
    span = (max(r["end"] for r in records) - min(r["start"] for r in records)) if records else 0.0
    return {"actions": rows, "slider_during_heavy": {"requests": len(overlapped),
                                                     "p50_s": percentile(overlapped, 50),
                                                     "p95_s": percentile(overlapped, 95)},
            "errors": [r["error"] for r in records if r["error"]], "requests": len(records), "wall_s": span}


def fmt(value, unit="s") -> str:
    return "—" if value is None else f"{value:.2f} {unit}".strip()


def markdown(report: dict) -> str:
    lines = ["| action | endpoints | requests | errors | p50 | p95 | max |", "| --- | --- | --- | --- | --- | --- | --- |"]
    endpoints = {SLIDER: "`/mnist_decode`, `/sprites_decode`", TRAVERSE: "`/folk_traverse`, `/bach_traverse` (9 steps, 4 WAVs)",
                 SURFACE: "`/mnist_surface`, `/folk_surface` (16 × 16)"}
    for action, row in report["actions"].items():
        if not row["requests"]:
            continue
        lines.append(f"| {action} | {endpoints[action]} | {row['requests']} | {row['errors']} | {fmt(row['p50_s'])} | "
                     f"{fmt(row['p95_s'])} | {fmt(row['max_s'])} |")
    during = report["slider_during_heavy"]
    lines.append(f"| slider while a heavy request ran | | {during['requests']} | | {fmt(during['p50_s'])} | "
                 f"{fmt(during['p95_s'])} | |")
    rss = report["rss_mb"]
    lines.append("")
    lines.append(f"RSS of the app: {fmt(rss['start'], 'MB')} at start; {fmt(rss['before'], 'MB')} after the warm-up "
                 f"and {fmt(rss['after'], 'MB')} after the run, each after {report['settle_s']:g} s idle"
                 + (f" ({100 * report['rss_growth']:+.1f} %)" if report["rss_growth"] is not None else "")
                 + f"; {fmt(rss['end'], 'MB')} at the end of the run, peak {fmt(rss['peak'], 'MB')} (the app and its "
                   "worker processes).")
    cpu = report.get("app_cpu_s")
    lines.append(f"{report['requests']} requests from {report['clients']} clients in {report['wall_s']:.0f} s"
                 + (f"; the app used {cpu:.0f} CPU-seconds ({cpu / report['wall_s']:.2f} cores)" if cpu else "")
                 + (f", the load generator's clients (this process, on the same machine) "
                    f"{report['client_cores']:.2f} cores" if report.get("client_cores") is not None else "")
                 + (f", all processes together {report['machine_busy_cores']:.2f} of {os.cpu_count()} cores"
                    if report.get("machine_busy_cores") is not None else "")
                 + f"; {report['machine']}"
                 + (f", {report['load_average_end']:.1f} at the end" if report.get("load_average_end") is not None else "")
                 + f"; {report['date']}.")
    return "\n".join(lines)


def verdict(report: dict) -> list[str]:
    failures = []
    if report["errors"]:
        failures.append(f"{len(report['errors'])} errors, e.g. {report['errors'][0]}")
    p95, what = report["slider_during_heavy"]["p95_s"], "slider p95 while heavy requests ran"
    if report.get("sliders_only"):
        p95, what = report["actions"][SLIDER]["p95_s"], "slider p95 (sliders only)"
    if p95 is None or p95 > TARGET_SLIDER_P95_S:
        failures.append(f"{what} is {fmt(p95)} (target <= {TARGET_SLIDER_P95_S:g} s)")
    if report["rss_growth"] is not None and report["rss_growth"] > TARGET_RSS_GROWTH:
        failures.append(f"RSS grew {100 * report['rss_growth']:.1f} % (target <= {100 * TARGET_RSS_GROWTH:g} %)")
    if report["rss_mb"]["peak"] > TARGET_PEAK_RSS_MB:
        failures.append(f"peak RSS {report['rss_mb']['peak']:.0f} MB (target <= {TARGET_PEAK_RSS_MB} MB)")
    for action in HEAVY:
        p95 = report["actions"][action]["p95_s"]
        if p95 is not None and p95 > TARGET_HEAVY_P95_S:
            failures.append(f"{action} p95 is {fmt(p95)} (target <= {TARGET_HEAVY_P95_S:g} s)")
    cores = report.get("app_cores")
    if not report.get("sliders_only") and cores is not None and cores < TARGET_CORES:
        failures.append(f"the app used {cores:.2f} cores (target >= {TARGET_CORES:g})")
    return failures


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu_name()}, {os.cpu_count()} CPUs, load average {load:.1f} at the start"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--url", help="an app that is already running (default: launch app.py)")
    parser.add_argument("--pid", type=int, help="with --url: the app's process id, for its RSS")
    parser.add_argument("--checkpoints", type=Path, help="ARVAE_CHECKPOINTS for the launched app (default ./checkpoints)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="worker processes of the launched app (ARVAE_WORKERS; "
                                                     "default one per core, 0: heavy actions in the app's threads)")
    parser.add_argument("--sliders-only", action="store_true",
                        help="a control run: only slider requests (how fast sliders are without heavy requests)")
    parser.add_argument("--no-warm-up", action="store_true")
    parser.add_argument("--settle", type=float, default=12.0, help="idle seconds before each RSS reading")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets are met")
    args = parser.parse_args(argv)

    process = None
    machine_text = machine()
    if args.url:
        url, pid = args.url, args.pid
    else:
        log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"arvae-load-{os.getpid()}.log"
        process, url = launch_app(args.checkpoints, log_path, workers=args.workers)
        pid = process.pid
        print(f"app.py serving {url} (pid {pid}, log {log_path})", flush=True)
    try:
        rss_start = rss_mb(pid)
        if not args.no_warm_up:
            print("warming up ...", flush=True)
            warm_up(url, args.clients)
        time.sleep(args.settle)
        rss_before = rss_mb(pid)
        print(f"running {args.clients} clients x {args.requests} requests ...", flush=True)
        cpu_before, peak = cpu_s(pid), [rss_before or 0.0]
        clients_before, machine_before = client_cpu_s(), machine_busy_s()
        sampling = threading.Event()

        def sample_peak():
            while not sampling.wait(0.5):
                peak.append(rss_mb(pid) or 0.0)

        sampler = threading.Thread(target=sample_peak, daemon=True)
        sampler.start()
        records = run_load(url, args.clients, args.requests, args.seed, ((SLIDER, 1.0),) if args.sliders_only else MIX)
        sampling.set()
        cpu_after = cpu_s(pid)
        clients_cpu, machine_after = client_cpu_s() - clients_before, machine_busy_s()
        rss_end = rss_mb(pid)
        time.sleep(args.settle)
        rss_after = rss_mb(pid)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    report = summarize(records)
    app_cpu = (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None
    report["app_cores"] = app_cpu / report["wall_s"] if app_cpu and report["wall_s"] else None
    report["client_cores"] = clients_cpu / report["wall_s"] if report["wall_s"] else None
    report["machine_busy_cores"] = ((machine_after - machine_before) / report["wall_s"]
                                    if machine_before is not None and machine_after is not None and report["wall_s"]
                                    else None)
    report.update(sliders_only=args.sliders_only, clients=args.clients, requests_per_client=args.requests, url=url, machine=machine_text,
                  date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  rss_mb={"start": rss_start, "before": rss_before, "end": rss_end, "after": rss_after,
                          "peak": max(peak)}, workers=args.workers,
                  load_average_end=os.getloadavg()[0] if hasattr(os, "getloadavg") else None, settle_s=args.settle, app_cpu_s=app_cpu,
                  rss_growth=(rss_after / rss_before - 1.0) if rss_before and rss_after else None)
    print(markdown(report))
    failures = verdict(report)
    for error in sorted(set(report["errors"]))[:10]:
        print("error:", error)
    print("targets met" if not failures else "targets missed: " + "; ".join(failures))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    sys.exit(main())
