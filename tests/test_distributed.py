"""train.py under ``torchrun --nproc_per_node=2`` (DistributedDataParallel, gloo on CPU): both
ranks train on different batches and end with bitwise identical weights; rank 0 alone writes the
checkpoint, and it holds those weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import write_tiny_mnist

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402
from arvae import checkpoint, registry  # noqa: E402
from arvae.losses import arvae_objective  # noqa: E402

STEPS = 3


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    digests, out = base / "digests", base / "checkpoints"
    env = {**os.environ, "ARVAE_CACHE": str(base / "cache"), "ARVAE_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT), train.RANK_DIGEST_ENV: str(digests)}
    env.pop("ARVAE_HUB_REPO", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
               str(ROOT / "train.py"), "--dataset", "mnist", "--model", "arvae", "--max-steps", str(STEPS),
               "--batch-size", "8", "--device", "cpu", "--data-dir", str(write_tiny_mnist(base / "mnist")),
               "--no-select-best", "--output-dir", str(out)]  # the last step's weights: the ones both ranks hold
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    ranks = {}
    for path in sorted(digests.glob("mnist-arvae-rank*.json")):
        record = json.loads(path.read_text())
        ranks[record["rank"]] = record
    return {"ranks": ranks, "out": out, "log": done.stdout + done.stderr}


def test_both_ranks_end_with_identical_weights(ddp_run):
    ranks = ddp_run["ranks"]
    assert sorted(ranks) == [0, 1], ddp_run["log"][-2000:]
    assert all(r["world_size"] == 2 and r["step"] == STEPS for r in ranks.values())
    # each rank trained on its own shard of every batch ...
    assert ranks[0]["data_sha256"] != ranks[1]["data_sha256"]
    # ... and the all-reduced gradients kept the replicas equal, bit for bit
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]


def test_only_rank_zero_wrote_the_checkpoint_and_it_holds_the_shared_weights(ddp_run):
    out = ddp_run["out"]
    folders = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir())
    assert folders == [".runs", ".runs/mnist", ".runs/mnist/arvae", "mnist", "mnist/arvae"]
    model_dir = out / ".runs" / "mnist" / "arvae"  # the run folder: the training state lives there
    assert checkpoint.read_metadata(out / "mnist" / "arvae") == checkpoint.read_metadata(model_dir)
    metadata = checkpoint.read_metadata(model_dir)
    assert metadata["hyperparameters"]["world_size"] == 2 and metadata["steps"] == STEPS
    assert "2 x" in metadata["hardware"]
    spec = registry.get("mnist")
    model = spec.model_class(**spec.model_kwargs)
    optimizer = torch.optim.Adam(model.parameters())
    assert checkpoint.load_training_state(model_dir, model, optimizer) is not None
    assert train.weights_sha256(model) == ddp_run["ranks"][0]["weights_sha256"]
    # the weights moved away from the seeded initialization
    torch.manual_seed(0)
    assert train.weights_sha256(spec.model_class(**spec.model_kwargs)) != ddp_run["ranks"][0]["weights_sha256"]


def test_unsynchronized_replicas_would_differ():
    """The control that makes the equality above meaningful: the same model and optimizer stepped on
    two different batches without an all-reduce end with different digests."""
    spec = registry.get("mnist")
    digests = []
    for seed in (1, 2):
        torch.manual_seed(0)
        model = spec.model_class(**spec.model_kwargs).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        inputs = (torch.rand(8, 1, 28, 28, generator=generator) > 0.7).to(torch.uint8) * 255
        attributes = torch.rand(8, len(spec.attribute_names), generator=generator)
        torch.manual_seed(0)
        terms = arvae_objective(model, inputs, attributes, spec.regularized_dims, spec.beta, spec.gamma, spec.delta)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        digests.append(train.weights_sha256(model))
    assert digests[0] != digests[1]
