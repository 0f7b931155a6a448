"""train.py end to end, as a maintainer runs it: a few CPU steps per dataset, then --resume."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from arvae import checkpoint, registry
from helpers import write_tiny_mnist

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATA = {"sprites": ["--max-items", "256"], "mnist": [], "bach": ["--max-items", "3"],
              "folk": ["--max-items", "3"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "ARVAE_CACHE": str(cache), "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    return write_tiny_mnist(tmp_path_factory.mktemp("mnist"))


def run_train(args, env, **kwargs):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def dataset_args(key, mnist_dir):
    return SMALL_DATA[key] + (["--data-dir", str(mnist_dir)] if key == "mnist" else [])


@pytest.mark.parametrize("key", ["sprites", "mnist", "bach", "folk"])
def test_train_few_steps_then_resume(key, env, mnist_dir, tmp_path):
    # --no-select-best: which of a few steps' probes is best is chance; this is about the last step's model
    common = ["--dataset", key, "--model", "arvae", "--device", "cpu", "--batch-size", "16", "--no-select-best",
              "--output-dir", str(tmp_path), *dataset_args(key, mnist_dir)]
    first = run_train([*common, "--max-steps", "3"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    model_dir = tmp_path / key / "arvae"
    assert {"config.json", "model.safetensors", "metadata.json"} <= {p.name for p in model_dir.iterdir()}
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["steps"] == 3 and metadata["complete"]
    gamma = metadata["hyperparameters"]["gamma"]  # one weight, or one per attribute
    assert metadata["dataset"] == key and min(gamma if isinstance(gamma, list) else [gamma]) > 0
    assert metadata["data"]["train_items"] > 0 and metadata["data"]["source"]
    assert "CPU" in metadata["hardware"] and metadata["seed"] == 0
    assert set(metadata["final_val_losses"]) >= {"reconstruction", "kld", "regularization", "accuracy"}
    weights_after_3 = load_file(model_dir / "model.safetensors")
    assert metadata["weights_dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in weights_after_3.values() if v.is_floating_point())

    # a run shorter than the registry's schedule replaces a published model only with --overwrite
    resumed = run_train([*common, "--max-steps", "5", "--resume", "--overwrite"], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at step 3" in resumed.stdout
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["steps"] == 5
    weights_after_5 = load_file(model_dir / "model.safetensors")
    assert any(not torch.equal(weights_after_3[k], weights_after_5[k]) for k in weights_after_3)


def test_resume_reproduces_an_uninterrupted_run(env, tmp_path):
    common = ["--dataset", "sprites", "--model", "beta-vae", "--device", "cpu", "--batch-size", "16",
              "--max-items", "256", "--lr-schedule", "constant", "--no-select-best"]  # a cosine spans each call's steps
    straight = run_train([*common, "--max-steps", "6", "--output-dir", str(tmp_path / "a")], env)
    assert straight.returncode == 0, straight.stderr[-3000:]
    run_train([*common, "--max-steps", "2", "--output-dir", str(tmp_path / "b")], env)
    resumed = run_train([*common, "--max-steps", "6", "--resume", "--overwrite", "--output-dir", str(tmp_path / "b")],
                        env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "a/sprites/beta-vae/model.safetensors")
    b = load_file(tmp_path / "b/sprites/beta-vae/model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert json.loads((tmp_path / "b/sprites/beta-vae/metadata.json").read_text())["hyperparameters"]["gamma"] == 0


def test_resume_trains_with_the_learning_rate_it_is_given(env, tmp_path):
    common = ["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--batch-size", "16",
              "--max-items", "256", "--output-dir", str(tmp_path), "--lr-schedule", "constant", "--no-select-best"]
    assert run_train([*common, "--max-steps", "2", "--lr", "1e-3"], env).returncode == 0
    resumed = run_train([*common, "--max-steps", "4", "--lr", "1e-4", "--resume", "--overwrite"], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = checkpoint.read_training_state(tmp_path / ".runs" / "sprites" / "arvae")
    assert [group["lr"] for group in state["optimizer_param_groups"]] == [1e-4]  # not the saved 1e-3
    metadata = checkpoint.read_metadata(tmp_path / "sprites" / "arvae")
    assert metadata["hyperparameters"]["lr"] == 1e-4
    assert [(s["from_step"], s["lr"]) for s in metadata["segments"]] == [(0, 1e-3), (2, 1e-4)]  # both recorded


def test_ctrl_c_saves_before_exiting(env, tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "--dataset", "sprites", "--model", "arvae", "--device", "cpu",
         "--max-items", "2048", "--batch-size", "16", "--max-steps", "100000", "--checkpoint-every", "5",
         "--output-dir", str(tmp_path)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background (`pytest &`) has SIGINT ignored, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    model_dir = tmp_path / ".runs" / "sprites" / "arvae"  # the default run folder
    deadline = time.time() + 180
    while not (model_dir / "training_state.json").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted: saved step" in stdout
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["steps"] >= 5 and not metadata["complete"]
    assert f"saved step {metadata['steps']}" in stdout
    assert not (tmp_path / "sprites").exists()  # an interrupted run publishes nothing

    # resumed with its own step as the end, the run finishes there and publishes
    finished = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "2048",
                          "--batch-size", "16", "--max-steps", str(metadata["steps"]), "--resume",
                          "--output-dir", str(tmp_path)], env)
    assert finished.returncode == 0, finished.stderr[-2000:]
    published = checkpoint.read_metadata(tmp_path / "sprites" / "arvae")
    assert published["complete"] and published["steps"] == metadata["steps"]


def test_bf16_run_trains_and_its_checkpoint_loads_in_fp32(env, tmp_path):
    result = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "256",
                        "--batch-size", "16", "--max-steps", "3", "--precision", "bf16",
                        "--output-dir", str(tmp_path)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    model, metadata = checkpoint.load_trained(registry.get("sprites"), "arvae", tmp_path)
    assert metadata["precision"] == "bf16" and metadata["steps"] == 3
    assert all(math.isfinite(v) for v in metadata["final_val_losses"].values())
    assert all(math.isfinite(v) for v in metadata["final_train_losses"].values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    decoded = model.generate(torch.zeros(2, model.latent_dim))
    assert decoded.dtype == torch.float32 and torch.isfinite(decoded).all()


def test_shortened_run_keeps_the_published_model_unless_overwrite(env, tmp_path):
    common = ["--dataset", "sprites", "--model", "beta-vae", "--device", "cpu", "--max-items", "256",
              "--batch-size", "16", "--max-steps", "2", "--output-dir", str(tmp_path)]
    published = tmp_path / "sprites" / "beta-vae" / "model.safetensors"
    first = run_train(common, env)  # nothing published yet: a short run may fill the empty folder
    assert first.returncode == 0 and published.exists(), first.stderr[-3000:]
    shipped = published.read_bytes()

    second = run_train([*common, "--seed", "1"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "not published" in second.stdout and "--overwrite" in second.stdout
    assert published.read_bytes() == shipped
    assert (tmp_path / ".runs" / "sprites" / "beta-vae" / "model.safetensors").read_bytes() != shipped

    third = run_train([*common, "--seed", "1", "--overwrite"], env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert published.read_bytes() != shipped
    assert checkpoint.read_metadata(published.parent)["seed"] == 1


def test_validation_probe_logs_each_attributes_spearman(env, tmp_path):
    result = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "512",
                        "--batch-size", "16", "--max-steps", "4", "--eval-every", "2",
                        "--gamma", "20,10,20,10,10", "--delta", "1,1,0.5,1,1", "--warmup", "1,2", "--free-bits", "0.5",
                        "--no-select-best", "--output-dir", str(tmp_path)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    state = checkpoint.read_training_state(tmp_path / ".runs" / "sprites" / "arvae")
    assert [entry["step"] for entry in state["history"]] == [2, 4]
    spec = registry.get("sprites")
    for entry in state["history"]:
        assert set(entry["spearman"]) == set(spec.attribute_names)
        assert all(-1 <= rho <= 1 for rho in entry["spearman"].values())
    metadata = checkpoint.read_metadata(tmp_path / "sprites" / "arvae")
    assert metadata["hyperparameters"]["gamma"] == [20, 10, 20, 10, 10]
    assert metadata["hyperparameters"]["delta"] == [1, 1, 0.5, 1, 1]
    assert metadata["hyperparameters"]["warmup"] == [1, 2] and metadata["hyperparameters"]["free_bits"] == 0.5
    assert metadata["final_val_spearman"] == state["history"][-1]["spearman"]

    from arvae import runs  # the experiment table of that run
    rows = runs.summary_rows(tmp_path / ".runs" / "sprites" / "arvae")
    assert [row["step"] for row in rows] == [2, 4] and list(rows[0]["spearman"]) == list(spec.attribute_names)
    table = runs.markdown(rows)
    assert "γ 20/10/20/10/10" in table and "δ 1/1/0.5/1/1" in table and "free bits 0.5" in table and "| ρ shape | ρ scale |" in table
    assert "batch norm" in table  # the registry's sprites model option, read from the run's config.json


def test_run_tables_name_changed_model_options_and_keep_each_datasets_attributes_apart():
    from arvae import runs
    from arvae.models import SpritesVAE
    config = {"model_class": "SpritesVAE", "latent_dim": 10, "channels": 32, "batch_norm": True, "decoder_channels": 64}
    assert runs.model_options(config, SpritesVAE) == ["batch norm", "decoder channels 64"]  # latent dim 10 is the default
    assert runs.model_options({"model_class": "SpritesVAE", "batch_norm": False}, SpritesVAE) == []
    row = {"recipe": "r", "step": 1, "wall_time_s": 60.0, "accuracy": 0.9}
    sprites_row = row | {"run": "a/arvae", "spearman": {"shape": 0.5, "scale": 0.9}}
    mnist_row = row | {"run": "b/arvae", "spearman": {"area": 0.8}}
    text = runs.tables([sprites_row, mnist_row, sprites_row | {"step": 2}])
    assert text.count("| run | recipe |") == 2 and "| ρ shape | ρ scale |" in text and "| ρ area |" in text
    assert "| a/arvae | 2 | 1 min | 0.9000 | 0.50 | 0.90 |" in text and "| b/arvae | 1 | 1 min | 0.9000 | 0.80 |" in text


@pytest.mark.parametrize("flag", ["--gamma", "--delta"])
def test_per_attribute_weights_of_the_wrong_length_fail_clearly(env, tmp_path, flag):
    result = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "256",
                        "--max-steps", "1", flag, "1,2", "--output-dir", str(tmp_path)], env)
    assert result.returncode == 1 and f"{flag} gives 2 weights for 5 attributes" in result.stderr


def test_push_to_hub_without_token_keeps_local_files(env, tmp_path):
    no_token = {**env, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf")}
    result = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "256",
                        "--batch-size", "16", "--max-steps", "1", "--output-dir", str(tmp_path),
                        "--push-to-hub", "someone/ar-vae"], no_token)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not pushed" in result.stdout
    assert (tmp_path / "sprites/arvae/model.safetensors").exists()


def test_bad_arguments_fail_clearly(env):
    result = run_train(["--dataset", "cifar"], env)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_reconstruction_warmup_is_off_then_ramps_linearly_to_full_weight():
    import train

    assert train.reconstruction_weight(0, (0, 0)) == 1.0  # the paper's objective
    weights = [train.reconstruction_weight(step, (3, 4)) for step in range(9)]
    assert weights == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert train.parse_warmup("1500,3000") == (1500, 3000)
    with pytest.raises(ValueError):
        train.parse_warmup("-1,3")


def test_learning_rate_is_constant_or_a_cosine_decay_to_zero():
    import train

    assert [train.learning_rate(step, 10, 1e-3, "constant") for step in (0, 5, 10)] == [1e-3] * 3
    cosine = [train.learning_rate(step, 10, 1e-3, "cosine") for step in range(11)]
    assert cosine[0] == 1e-3 and cosine[5] == pytest.approx(5e-4) and cosine[10] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    with pytest.raises(ValueError):
        train.learning_rate(0, 10, 1e-3, "linear")


def test_select_best_publishes_the_probe_with_the_lowest_validation_objective(env, tmp_path):
    result = run_train(["--dataset", "sprites", "--model", "arvae", "--device", "cpu", "--max-items", "512",
                        "--batch-size", "16", "--max-steps", "6", "--eval-every", "1", "--lr", "0.05",
                        "--lr-schedule", "cosine", "--select-best", "--output-dir", str(tmp_path)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / ".runs" / "sprites" / "arvae"
    state = checkpoint.read_training_state(run_dir)
    totals = {entry["step"]: entry["val"]["total"] for entry in state["history"]}
    best_step = min(totals, key=totals.get)
    assert state["best"] == {"step": best_step, "val_total": totals[best_step]}
    assert state["optimizer_param_groups"][0]["lr"] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))

    published = tmp_path / "sprites" / "arvae"
    metadata = checkpoint.read_metadata(published)
    assert metadata["complete"] and metadata["steps"] == best_step and metadata["trained_steps"] == 6
    assert metadata["selected"] == {"by": "lowest validation objective", **state["best"]}
    assert metadata["hyperparameters"]["lr_schedule"] == "cosine"
    assert (published / "model.safetensors").read_bytes() == (run_dir / "best" / "model.safetensors").read_bytes()
    if best_step != 6:  # the last step's model stays in the run folder
        assert (run_dir / "model.safetensors").read_bytes() != (published / "model.safetensors").read_bytes()

    from arvae import runs
    recipe = runs.recipe(metadata)
    assert "cosine lr" in recipe and f"best validation probe (step {best_step:,})" in recipe
