"""Train AR-VAE and the beta-VAE baseline on the paper's datasets.

    python train.py --dataset sprites                      # both models, paper hyperparameters
    python train.py --dataset bach --model arvae --max-steps 3 --device cpu --output-dir /tmp/ck
    torchrun --nproc_per_node=2 train.py --dataset mnist    # DistributedDataParallel

Each run writes ``<output-dir>/<dataset>/<model>/`` with ``config.json``, ``model.safetensors``
and ``metadata.json`` (plus ``training_state.*`` for ``--resume``). Ctrl-C saves before exiting.
Hyperparameters come from the dataset registry (``arvae/registry.py``); flags override them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from arvae import checkpoint, hub, registry
from arvae.losses import arvae_objective


# ----------------------------------------------------------------------------- configuration
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=[*registry.DATASETS, "all"])
    parser.add_argument("--model", default="both", choices=[*registry.MODEL_KINDS, "both"])
    parser.add_argument("--epochs", type=int, help="default: the registry's (paper's) epochs")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    parser.add_argument("--batch-size", type=int, help="default: the registry's batch size")
    parser.add_argument("--lr", type=float, help="default: the registry's learning rate (1e-4)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", help="dataset files (MNIST IDX folder, dSprites npz, folk-rnn ABC file)")
    parser.add_argument("--max-items", type=int, help="cap the training data (images, or pieces for music)")
    parser.add_argument("--output-dir", default="checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from <output-dir>/<dataset>/<model>")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="optimizer steps between checkpoints")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload each trained model folder to the Hub")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- distributed setup
def setup_distributed(requested_device: str):
    """(rank, world_size, device). Under torchrun: gloo on CPU, NCCL on GPU; only rank 0 writes."""
    use_cuda = requested_device == "cuda" or (requested_device == "auto" and torch.cuda.is_available())
    if requested_device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was requested but no CUDA GPU is available")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return rank, world_size, torch.device("cuda", local_rank)
    return rank, world_size, torch.device("cpu")


def hardware_description(device: torch.device, world_size: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
               f"{torch.get_num_threads()} torch threads)"
    return f"{world_size} x {name}" if world_size > 1 else name


RANK_DIGEST_ENV = "ARVAE_RANK_DIGEST_DIR"


def write_rank_digest(directory, spec, model_kind: str, rank: int, world_size: int, step: int, model,
                      data_digest) -> Path:
    """For checking DistributedDataParallel (tests/test_distributed.py): with ``$ARVAE_RANK_DIGEST_DIR``
    set, every rank writes a SHA-256 of its final weights and of the batch indices it trained on.
    Synchronized gradients leave all ranks with bitwise the same weights although each saw other
    batches. A digest, not a checkpoint: rank 0 alone writes those."""
    path = Path(directory) / f"{spec.key}-{model_kind}-rank{rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rank": rank, "world_size": world_size, "step": step,
                                "weights_sha256": weights_sha256(model), "data_sha256": data_digest.hexdigest()}))
    return path


def weights_sha256(model) -> str:
    """SHA-256 of a model's tensors (names and float32 bytes, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- training
def raise_keyboard_interrupt(signum, frame):
    """A SIGTERM (e.g. from a job scheduler) is handled like Ctrl-C: save, then exit."""
    raise KeyboardInterrupt
def evaluate(model, loader, spec, gamma, device) -> dict[str, float]:
    """Mean loss terms over a data loader, in eval mode (z = posterior mean)."""
    model.eval()
    sums, count = {}, 0
    with torch.no_grad():
        for inputs, attributes in loader:
            terms = arvae_objective(model, inputs.to(device), attributes.to(device), spec.regularized_dims,
                                    spec.beta, gamma, spec.delta).as_floats()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value * len(inputs)
            count += len(inputs)
    model.train()
    return {key: value / count for key, value in sums.items()}


def train(spec, model_kind: str, args, rank: int, world_size: int, device: torch.device) -> Path:
    out_dir = Path(args.output_dir) / spec.key / model_kind
    is_main = rank == 0
    gamma = spec.gamma_for(model_kind)
    batch_size = args.batch_size or spec.batch_size
    lr = args.lr or spec.lr
    epochs = args.epochs or spec.epochs

    # data
    train_set = spec.load_split("train", data_dir=args.data_dir, max_items=args.max_items)
    val_set = spec.load_split("val", data_dir=args.data_dir,
                              max_items=None if args.max_items is None else max(args.max_items // 8, batch_size))
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=512)
    steps_per_epoch = max(1, len(train_set) // (batch_size * world_size))
    total_steps = min(epochs * steps_per_epoch, args.max_steps or math.inf)

    # model and optimizer
    torch.manual_seed(args.seed)
    model = spec.model_class(**spec.model_kwargs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    state = {"step": 0, "wall_time_s": 0.0, "history": []}
    if args.resume:
        removed = checkpoint.remove_temporaries(out_dir) if is_main else []
        if removed:  # a run killed while saving: its complete files are intact, drop the partial ones
            print(f"[{spec.key}/{model_kind}] removed {len(removed)} temporary file(s) of an interrupted save")
        restored = checkpoint.load_training_state(out_dir, model, optimizer)
        if restored is None:
            print(f"[{spec.key}/{model_kind}] --resume: no training state in {out_dir}, starting fresh")
        else:
            state = restored
            print(f"[{spec.key}/{model_kind}] resuming at step {state['step']}")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    ddp_model.train()

    started = time.time()
    wall_before = state["wall_time_s"]
    digest_dir = os.environ.get(RANK_DIGEST_ENV, "").strip()
    data_digest = hashlib.sha256() if digest_dir else None

    def metadata(complete: bool, val_terms: dict | None) -> dict:
        return {
            "dataset": spec.key, "model": model_kind, "model_class": spec.model_class.__name__,
            "attribute_names": list(spec.attribute_names), "regularized_dims": list(spec.regularized_dims),
            "hyperparameters": {"beta": spec.beta, "gamma": gamma, "delta": spec.delta, "lr": lr,
                                "batch_size": batch_size, "world_size": world_size},
            "data": {"source": train_set.source, "train_items": len(train_set), "val_items": len(val_set),
                     "data_dir": args.data_dir, "max_items": args.max_items},
            "steps": state["step"], "steps_per_epoch": steps_per_epoch,
            "epochs": round(state["step"] / steps_per_epoch, 3), "planned_steps": total_steps,
            "seed": args.seed, "hardware": hardware_description(device, world_size),
            "torch": torch.__version__, "wall_time_s": round(wall_before + time.time() - started, 1),
            "final_train_losses": state["history"][-1]["train"] if state["history"] else None,
            "final_val_losses": val_terms, "complete": complete,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python train.py " + " ".join(sys.argv[1:]),
        }

    def save(complete=False, val_terms=None):
        if not is_main:
            return
        state["wall_time_s"] = wall_before + time.time() - started
        checkpoint.save_training_state(out_dir, model, optimizer, state)
        checkpoint.save_model(model, out_dir, metadata(complete, val_terms))

    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    progress = tqdm(total=total_steps, initial=state["step"], disable=not is_main, dynamic_ncols=True,
                    desc=f"{spec.key}/{model_kind}")
    running = {}
    try:
        while state["step"] < total_steps:
            epoch, step_in_epoch = divmod(state["step"], steps_per_epoch)
            # the epoch's shuffle depends only on (seed, epoch), so a resumed run sees the same batches
            order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(args.seed * 10007 + epoch))
            order = order[: steps_per_epoch * batch_size * world_size].view(steps_per_epoch, world_size, batch_size)
            for step_in_epoch in range(step_in_epoch, steps_per_epoch):
                if state["step"] >= total_steps:
                    break
                torch.manual_seed(args.seed * 1_000_003 + state["step"] * world_size + rank)
                inputs, attributes = train_set[order[step_in_epoch, rank]]
                if data_digest is not None:
                    data_digest.update(order[step_in_epoch, rank].numpy().tobytes())
                terms = arvae_objective(ddp_model, inputs.to(device), attributes.to(device),
                                        spec.regularized_dims, spec.beta, gamma, spec.delta)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()
                state["step"] += 1
                for key, value in terms.as_floats().items():  # exponential moving averages for display
                    running[key] = value if key not in running else 0.98 * running[key] + 0.02 * value
                progress.update(1)
                progress.set_postfix(epoch=epoch, recon=f"{running['reconstruction']:.3g}",
                                     kld=f"{running['kld']:.3g}", reg=f"{running['regularization']:.3g}",
                                     acc=f"{running['accuracy']:.3f}")
                if state["step"] % args.checkpoint_every == 0:
                    save()
            val_terms = evaluate(model, val_loader, spec, gamma, device)
            state["history"].append({"step": state["step"], "epoch": epoch, "train": dict(running), "val": val_terms})
            if is_main:
                progress.write(f"[{spec.key}/{model_kind}] epoch {epoch} step {state['step']}: val "
                               + " ".join(f"{k}={v:.4g}" for k, v in val_terms.items()))
            save(complete=state["step"] >= total_steps, val_terms=val_terms)
    except KeyboardInterrupt:
        progress.close()
        save(val_terms=state["history"][-1]["val"] if state["history"] else None)
        if is_main:
            print(f"\ninterrupted: saved step {state['step']} to {out_dir}; continue with --resume")
        raise
    progress.close()
    if digest_dir:
        write_rank_digest(digest_dir, spec, model_kind, rank, world_size, state["step"], model, data_digest)
    return out_dir


# ----------------------------------------------------------------------------- Hub upload
def push_to_hub(model_dir: Path, repo_id: str, spec, model_kind: str) -> None:
    """Upload a trained model folder with a model card; offline or without a token, say so. The token
    ($HF_TOKEN or the login cache) is read by huggingface_hub and never printed (:func:`arvae.hub.redact`)."""
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        print(f"not pushed: no Hugging Face token (set HF_TOKEN or run `hf auth login`); files stay in {model_dir}")
        return
    meta = checkpoint.read_metadata(model_dir)
    card = (f"---\nlibrary_name: arvae\ntags: [ar-vae, vae, disentanglement]\n---\n"
            f"# {spec.display_name} {model_kind}\n\nAttribute-regularized VAE (Pati & Lerch) trained by "
            f"`train.py`. Regularized attributes and dims: "
            + ", ".join(f"{a} -> z{d}" for a, d in zip(spec.attribute_names, spec.regularized_dims))
            + f".\n\nData: {meta.get('data', {}).get('source')}. Steps: {meta.get('steps')} "
              f"({meta.get('epochs')} epochs) on {meta.get('hardware')}.\n")
    (model_dir / "README.md").write_text(card)
    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, path_in_repo=f"{spec.key}/{model_kind}",
                          allow_patterns=["config.json", "model.safetensors", "metadata.json", "README.md"])
        print(f"pushed {model_dir} to https://huggingface.co/{repo_id}/tree/main/{spec.key}/{model_kind}")
    except Exception as error:  # network down, auth refused, ...: the local files stay
        print(hub.redact(f"not pushed to {repo_id}: {type(error).__name__}: {error}. Local files stay in {model_dir}"))


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    args = parse_args(argv)
    rank, world_size, device = setup_distributed(args.device)
    keys = list(registry.DATASETS) if args.dataset == "all" else [args.dataset]
    kinds = list(registry.MODEL_KINDS) if args.model == "both" else [args.model]
    try:
        for key in keys:
            for kind in kinds:
                spec = registry.get(key)
                model_dir = train(spec, kind, args, rank, world_size, device)
                if rank == 0:
                    print(f"saved {model_dir}")
                    if args.push_to_hub:
                        push_to_hub(model_dir, args.push_to_hub, spec, kind)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
