"""Train AR-VAE and the beta-VAE baseline on the paper's datasets.

    python train.py --dataset sprites                      # both models, paper hyperparameters
    python train.py --dataset sprites --precision bf16     # bfloat16 autocast (CPU or CUDA)
    python train.py --dataset bach --model arvae --max-steps 3 --device cpu --output-dir /tmp/ck
    torchrun --nproc_per_node=2 train.py --dataset mnist    # DistributedDataParallel

A run trains in its run folder ``<run-dir>/<dataset>/<model>/`` (periodic checkpoints and
``training_state.*`` for ``--resume``; Ctrl-C saves there before exiting). Only a finished run
publishes ``config.json``, ``model.safetensors`` and ``metadata.json`` to
``<output-dir>/<dataset>/<model>/``, and a run shortened below the registry's schedule (``--max-steps``,
``--epochs``) never replaces a model already there unless ``--overwrite`` is given.
Hyperparameters come from the dataset registry (``arvae/registry.py``); flags override them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from arvae import checkpoint, hardware, hub, metrics, registry
from arvae.losses import arvae_objective


# ----------------------------------------------------------------------------- configuration
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # --precision -> autocast dtype


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=[*registry.DATASETS, "all"])
    parser.add_argument("--model", default="both", choices=[*registry.MODEL_KINDS, "both"])
    parser.add_argument("--epochs", type=int, help="default: the registry's (paper's) epochs")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    parser.add_argument("--batch-size", type=int, help="default: the registry's batch size")
    parser.add_argument("--lr", type=float, help="default: the registry's learning rate (1e-4)")
    parser.add_argument("--beta", type=float, help="KL weight; default: the registry's")
    parser.add_argument("--gamma", type=parse_per_attribute, help="AR-VAE's regularization weight, one value or one "
                                                                  "per attribute (comma-separated); default: the registry's")
    parser.add_argument("--delta", type=parse_per_attribute, help="AR-VAE's tanh scale δ, one value or one per "
                                                                  "attribute (comma-separated); default: the registry's")
    parser.add_argument("--warmup", type=parse_warmup, metavar="ALONE,RAMP",
                        help="steps without the reconstruction term, then steps of a linear ramp of it to full "
                             "weight; default: the registry's")
    parser.add_argument("--free-bits", type=float, help="nats per latent dim the KLD leaves unpenalized; "
                                                        "default: the registry's")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                        help="constant, or cosine decay to 0 over the run's steps; default: the registry's")
    parser.add_argument("--select-best", action=argparse.BooleanOptionalAction,
                        help="publish the model of the validation probe with the lowest validation objective "
                             "instead of the last step's; default: the registry's")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", help="dataset files (MNIST IDX folder, dSprites npz, folk-rnn ABC file)")
    parser.add_argument("--max-items", type=int, help="cap the training data (images, or pieces for music)")
    parser.add_argument("--output-dir", default="checkpoints", help="where finished models are published")
    parser.add_argument("--run-dir", help="training state and periodic checkpoints (default: <output-dir>/.runs)")
    parser.add_argument("--overwrite", action="store_true",
                        help="let a run shorter than the registry's schedule replace a published model")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="bf16: bfloat16 autocast for the forward pass (losses, weights and optimizer stay fp32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in <run-dir>/<dataset>/<model>")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="optimizer steps between checkpoints")
    parser.add_argument("--eval-every", type=int,
                        help="optimizer steps between validation probes (default: each epoch)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload each trained model folder to the Hub")
    return parser.parse_args(argv)


def parse_per_attribute(text: str) -> float | tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    return values[0] if len(values) == 1 else values


def parse_warmup(text: str) -> tuple[int, int]:
    alone, ramp = (int(v) for v in text.split(","))
    if alone < 0 or ramp < 0:
        raise ValueError(text)
    return alone, ramp


LR_SCHEDULES = ("constant", "cosine")


def learning_rate(step: int, total_steps: int, lr: float, schedule: str) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``: ``lr`` throughout
    (the paper's), or a cosine decay from ``lr`` to 0 over the run, which a resumed run continues."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; expected one of {LR_SCHEDULES}")


def reconstruction_weight(step: int, warmup: tuple[int, int]) -> float:
    """Weight of the reconstruction term at ``step``: 0 while the encoder learns from the
    regularization and the KLD alone to order each attribute, then a linear ramp to 1. Under Adam
    the decoder, which only reconstruction trains, learns at full speed from the first ramp step."""
    alone, ramp = warmup
    if step < alone:
        return 0.0
    return min(1.0, (step - alone + 1) / ramp) if ramp else 1.0


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
        name = f"CPU ({hardware.cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
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
BEST_DIR = "best"  # in a run folder: the model of the best validation probe (--select-best)


def raise_keyboard_interrupt(signum, frame):
    """A SIGTERM (e.g. from a job scheduler) is handled like Ctrl-C: save, then exit."""
    raise KeyboardInterrupt


def evaluate(model, loader, spec, beta, gamma, delta, device) -> tuple[dict[str, float], dict[str, float]]:
    """Mean loss terms over a data loader, in eval mode (z = posterior mean), and the Spearman
    correlation of each regularized dim's mean with its attribute on the same data: the probe that
    shows, while training, which attributes the latent space has learnt."""
    model.eval()
    sums, count, means, values = {}, 0, [], []
    with torch.no_grad():
        for inputs, attributes in loader:
            inputs, attributes = inputs.to(device), attributes.to(device)
            terms = arvae_objective(model, inputs, attributes, spec.regularized_dims,
                                    beta, gamma, delta).as_floats()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value * len(inputs)
            count += len(inputs)
            means.append(model.encode(model.preprocess(inputs))[0][:, list(spec.regularized_dims)].float().cpu())
            values.append(attributes.float().cpu())
    model.train()
    if not count:  # a tiny --max-items left no validation data
        return {}, {}
    means, values = torch.cat(means).numpy(), torch.cat(values).numpy()
    finite = np.isfinite(values).all(axis=1)  # e.g. blank digits have no morphometrics
    rho = metrics.spearman_rows(means[finite].T, values[finite].T)
    return ({key: value / count for key, value in sums.items()},
            {name: round(float(r), 4) for name, r in zip(spec.attribute_names, rho)})


def train(spec, model_kind: str, args, rank: int, world_size: int, device: torch.device) -> Path:
    """Train one model in its run folder; returns the folder of its finished (or interrupted) files."""
    out_dir = Path(args.run_dir or Path(args.output_dir) / ".runs") / spec.key / model_kind
    is_main = rank == 0
    gamma = args.gamma if args.gamma is not None and model_kind == "arvae" else spec.gamma_for(model_kind)
    delta = args.delta if args.delta is not None and model_kind == "arvae" else spec.delta
    beta = spec.beta if args.beta is None else args.beta
    warmup = spec.warmup if args.warmup is None else args.warmup
    free_bits = spec.free_bits if args.free_bits is None else args.free_bits
    lr_schedule = spec.lr_schedule if args.lr_schedule is None else args.lr_schedule
    select_best = spec.select_best if args.select_best is None else args.select_best
    for flag, value in (("--gamma", gamma), ("--delta", delta)):
        if isinstance(value, tuple) and len(value) != len(spec.attribute_names):
            sys.exit(f"error: {flag} gives {len(value)} weights for {len(spec.attribute_names)} attributes "
                     f"({', '.join(spec.attribute_names)})")
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
    scheduled_steps = spec.epochs * steps_per_epoch  # the registry's schedule at this batch size

    # model and optimizer
    torch.manual_seed(args.seed)
    model = spec.model_class(**spec.model_kwargs).to(device, memory_format=spec.model_class.memory_format)
    autocast_dtype = PRECISIONS[args.precision]
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
    # each invocation is a segment of the run: a resumed run may change lr, precision or hardware
    state.setdefault("segments", []).append({"from_step": state["step"], "lr": lr, "lr_schedule": lr_schedule,
                                             "precision": args.precision,
                                             "hardware": hardware_description(device, world_size),
                                             "command": "python train.py " + " ".join(sys.argv[1:])})
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
            "hyperparameters": {"beta": beta, "gamma": gamma, "delta": delta, "lr": lr, "warmup": list(warmup),
                                "lr_schedule": lr_schedule, "free_bits": free_bits,
                                "batch_size": batch_size, "world_size": world_size},
            "data": {"source": train_set.source, "train_items": len(train_set), "val_items": len(val_set),
                     "data_dir": args.data_dir, "max_items": args.max_items},
            "steps": state["step"], "steps_per_epoch": steps_per_epoch,
            "epochs": round(state["step"] / steps_per_epoch, 3), "planned_steps": total_steps,
            "scheduled_steps": scheduled_steps, "precision": args.precision,
            "seed": args.seed, "hardware": hardware_description(device, world_size),
            "torch": torch.__version__, "wall_time_s": round(wall_before + time.time() - started, 1),
            "final_train_losses": state["history"][-1]["train"] if state["history"] else None,
            "final_val_losses": val_terms, "complete": complete,
            "final_val_spearman": state["history"][-1]["spearman"] if state["history"] else None,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python train.py " + " ".join(sys.argv[1:]), "segments": state["segments"],
            "selected": {"by": "lowest validation objective", **state["best"]} if select_best and "best" in state
            else None,
        }

    def validate(epoch: int) -> dict:
        """Validation losses and the Spearman probe, appended to the history and printed."""
        if state["history"] and state["history"][-1]["step"] == state["step"]:
            return state["history"][-1]["val"]
        val_terms, spearman = evaluate(model, val_loader, spec, beta, gamma, delta, device)
        state["history"].append({"step": state["step"], "epoch": epoch, "train": dict(running), "val": val_terms,
                                 "spearman": spearman, "wall_time_s": round(wall_before + time.time() - started, 1)})
        if is_main:
            progress.write(f"[{spec.key}/{model_kind}] epoch {epoch} step {state['step']}: val "
                           + " ".join(f"{k}={v:.4g}" for k, v in val_terms.items())
                           + " | spearman " + " ".join(f"{k}={v:.2f}" for k, v in spearman.items()))
        if select_best and val_terms and val_terms["total"] < state.get("best", {}).get("val_total", math.inf):
            state["best"] = {"step": state["step"], "val_total": val_terms["total"]}
            if is_main:
                checkpoint.save_model(model, out_dir / BEST_DIR, metadata(False, val_terms))
        return val_terms

    def save(complete=False, val_terms=None):
        if not is_main:
            return
        state["wall_time_s"] = wall_before + time.time() - started
        checkpoint.save_training_state(out_dir, model, optimizer, state)
        checkpoint.save_model(model, out_dir, metadata(complete, val_terms))

    def finish() -> Path:
        """The folder to publish: the run's last model, or with ``select_best`` the best probe's,
        marked complete (its metadata says which step it is and that the run trained to the end)."""
        if not select_best or "best" not in state:
            return out_dir
        if is_main:
            best = checkpoint.read_metadata(out_dir / BEST_DIR)
            checkpoint.write_json(out_dir / BEST_DIR / checkpoint.METADATA_FILE,
                                  {**best, "complete": True, "trained_steps": state["step"]})
        return out_dir / BEST_DIR

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
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(state["step"], total_steps, lr, lr_schedule)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    terms = arvae_objective(ddp_model, inputs.to(device), attributes.to(device),
                                            spec.regularized_dims, beta, gamma, delta,
                                            reconstruction_weight(state["step"], warmup), free_bits)
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
                if args.eval_every and state["step"] % args.eval_every == 0:
                    validate(epoch)
                if state["step"] % args.checkpoint_every == 0:
                    save()
            save(complete=state["step"] >= total_steps, val_terms=validate(epoch))
        if is_main and not checkpoint.read_metadata(out_dir).get("complete"):  # resumed at its last step
            save(complete=True, val_terms=validate(state["step"] // steps_per_epoch))
    except KeyboardInterrupt:
        progress.close()
        save(val_terms=state["history"][-1]["val"] if state["history"] else None)
        if is_main:
            print(f"\ninterrupted: saved step {state['step']} to {out_dir}; continue with --resume")
        raise
    progress.close()
    if digest_dir:
        write_rank_digest(digest_dir, spec, model_kind, rank, world_size, state["step"], model, data_digest)
    return finish()


# ----------------------------------------------------------------------------- publishing
def publish(run_model_dir: Path, published_dir: Path, overwrite: bool) -> bool:
    """Copy a finished run's model files to ``published_dir`` (each file replaced atomically).

    A run shortened below the registry's schedule does not replace a published model unless
    ``overwrite``: a quick ``--max-steps 30`` try never clobbers the shipped checkpoints."""
    meta = checkpoint.read_metadata(run_model_dir)
    if not meta.get("complete"):
        print(f"not published: the run in {run_model_dir} has not finished; continue it with --resume")
        return False
    shortened = meta["planned_steps"] < meta["scheduled_steps"]
    if shortened and (published_dir / "model.safetensors").exists() and not overwrite:
        print(f"not published: this run trained {meta['steps']:,} of the registry's {meta['scheduled_steps']:,} "
              f"steps, so the model in {published_dir} is kept. Its files are in {run_model_dir}; "
              f"pass --overwrite to replace the published model")
        return False
    checkpoint.publish_model(run_model_dir, published_dir)
    return True


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
                run_model_dir = train(spec, kind, args, rank, world_size, device)
                model_dir = checkpoint.model_dir(args.output_dir, key, kind)
                if rank == 0 and publish(run_model_dir, model_dir, args.overwrite):
                    print(f"saved {model_dir}")
                    if args.push_to_hub:
                        hub.push_to_hub(model_dir, args.push_to_hub, spec, kind)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
