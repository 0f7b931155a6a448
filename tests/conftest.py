import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --------------------------------------------------------------------------------------------------
# The app under test (tests/test_app_api.py, tests/test_app_browser.py): `python app.py` serving the
# shipped checkpoints/ on a free localhost port; and, for the fault cases, tiny checkpoints made by
# train.py for every dataset and both models with the held-out samples exported next to them.
# Built once per test session.
import json as _json  # noqa: E402
import shutil as _shutil  # noqa: E402
import signal as _signal  # noqa: E402
import socket as _socket  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import time as _time  # noqa: E402
import urllib.request as _urllib_request  # noqa: E402

import pytest  # noqa: E402

APP_TRAIN_ARGS = ["--dataset", "all", "--model", "both", "--max-steps", "2", "--max-items", "16", "--batch-size", "8",
                  "--device", "cpu"]


def _free_port() -> int:
    with _socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def app_checkpoints(tmp_path_factory):
    """A checkpoints folder as the app expects it, built by train.py and arvae.samples; and the
    environment to run things against it (own dataset cache, tiny MNIST from the fixtures)."""
    from helpers import write_tiny_mnist

    base = tmp_path_factory.mktemp("app")
    root = base / "checkpoints"
    env = {**os.environ, "ARVAE_CACHE": str(base / "cache"), "ARVAE_MNIST_DIR": str(write_tiny_mnist(base / "mnist")),
           "ARVAE_OFFLINE": "1", "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "ARVAE_CHECKPOINTS": str(root)}
    env.pop("ARVAE_HUB_REPO", None)
    for command in ([sys.executable, str(ROOT / "train.py"), *APP_TRAIN_ARGS, "--output-dir", str(root)],
                    [sys.executable, "-m", "arvae.samples", "--dataset", "all", "--max-items", "16",
                     "--output-dir", str(root)]):
        done = _subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-4000:]}"
    return {"root": root, "env": env, "base": base}


class AppServer:
    def __init__(self, root, env, log_path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        server_env = {**env, "ARVAE_CHECKPOINTS": str(root), "GRADIO_SERVER_NAME": "127.0.0.1",
                      "GRADIO_SERVER_PORT": str(self.port)}
        self.log = open(log_path, "w")
        self.started = _time.monotonic()
        self.process = _subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=server_env, cwd=ROOT,
                                         stdout=self.log, stderr=_subprocess.STDOUT, start_new_session=True)
        self.startup_s = self._wait()
        self.startup_log = self.logs()

    def _wait(self, timeout: float = 120.0) -> float:
        deadline = self.started + timeout
        while _time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.logs()[-4000:]}")
            try:
                with _urllib_request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return _time.monotonic() - self.started
            except OSError:
                _time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"app.py did not serve {self.url} within {timeout:.0f}s:\n{self.logs()[-4000:]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(_signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except _subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


SHIPPED_CHECKPOINTS = ROOT / "checkpoints"


@pytest.fixture(scope="session")
def app_server(app_checkpoints):
    """`python app.py` serving the shipped, trained checkpoints; ``.url``, ``.logs()``, ``.alive()``."""
    server = AppServer(SHIPPED_CHECKPOINTS, app_checkpoints["env"], app_checkpoints["base"] / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def damaged_app_server(app_checkpoints):
    """A second server, on the tiny train.py checkpoints, whose folk AR-VAE checkpoint is truncated, MNIST has no beta-VAE, and sprites
    has a metrics.json (as arvae.evaluate writes it); its soundfont is missing (audio falls back to sine waves)."""
    root = app_checkpoints["base"] / "damaged"
    _shutil.copytree(app_checkpoints["root"], root, ignore=_shutil.ignore_patterns("training_state.*"))
    weights = root / "folk" / "arvae" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _shutil.rmtree(root / "mnist" / "beta-vae")
    metrics = {kind: {"interpretability": 0.777, "modularity": 0.9, "mig": 0.5, "sap": 0.4, "scc": 0.8,
                      "reconstruction_accuracy": 0.9912, "traversal_monotonicity": 0.66,
                      "checkpoint": {"steps": 2, "epochs": 0.1, "hardware": "CPU"}}
               for kind in ("arvae", "beta-vae")}
    metrics["beta-vae"]["attribute_dims"] = {"shape": 7, "scale": 7, "orientation": 3, "pos_x": 1, "pos_y": 9}
    metrics["evaluated_on"] = {"split": "test", "num_samples": 16, "mi_estimator": "ksg"}
    (root / "sprites" / "metrics.json").write_text(_json.dumps(metrics))
    env = {**app_checkpoints["env"], "ARVAE_SOUNDFONT": str(root / "missing-soundfont.sf2")}
    server = AppServer(root, env, app_checkpoints["base"] / "damaged.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests (tests/browser_helpers.py), one per test module: the
    sync Playwright API keeps an asyncio loop running in the main thread while it is open, which
    later tests that call ``asyncio.run`` (the MCP client) must not find."""
    from browser_helpers import launch_chromium

    with launch_chromium() as browser:
        yield browser
