"""Checkpoint files: the published model (config + safetensors + metadata) and the resumable
training state. Every file is written to a temporary name and atomically renamed into place,
so a killed process never leaves half a checkpoint. No pickle anywhere."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MODEL_FILES = ("config.json", "model.safetensors")
METADATA_FILE = "metadata.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


def _replace_atomically(directory: Path, name: str, write) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, directory / name)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    _replace_atomically(path.parent, path.name,
                        lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))


PUBLISHED_DTYPE = torch.float16  # halves the repository's size; loading casts back to the model's dtype


def store_weights_as(path: Path, dtype: torch.dtype = PUBLISHED_DTYPE) -> None:
    """Rewrite a safetensors file with its floating-point tensors in ``dtype``."""
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(path).items()}
    save_file(tensors, path)


def save_model(model, directory: Path, metadata: dict) -> None:
    """Write ``config.json`` + ``model.safetensors`` (float16, via ``save_pretrained``) and ``metadata.json``.

    The resumable training state (:func:`save_training_state`) keeps full precision.
    """
    directory = Path(directory)
    with tempfile.TemporaryDirectory(dir=directory.parent if directory.parent.exists() else None) as staging:
        model.save_pretrained(staging)
        store_weights_as(Path(staging) / "model.safetensors")
        for name in MODEL_FILES:
            _replace_atomically(directory, name, lambda tmp, name=name: os.replace(Path(staging) / name, tmp))
    write_json(directory / METADATA_FILE, {**metadata, "weights_dtype": str(PUBLISHED_DTYPE).removeprefix("torch.")})


def save_training_state(directory: Path, model, optimizer, state: dict) -> None:
    """Model and optimizer tensors to safetensors, the rest (step, epoch, ...) to JSON."""
    directory = Path(directory)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, per_param in optimizer_state["state"].items():
        for key, value in per_param.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).contiguous().cpu()
    _replace_atomically(directory, STATE_TENSORS, lambda tmp: save_file(tensors, tmp))
    write_json(directory / STATE_JSON, {**state, "optimizer_param_groups": optimizer_state["param_groups"]})


def load_training_state(directory: Path, model, optimizer) -> dict | None:
    """Restore model and optimizer in place; returns the JSON state, or None if there is none."""
    directory = Path(directory)
    if not (directory / STATE_TENSORS).exists() or not (directory / STATE_JSON).exists():
        return None
    state = json.loads((directory / STATE_JSON).read_text())
    tensors = load_file(directory / STATE_TENSORS)
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    per_param: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            per_param.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("optimizer_param_groups")})
    return state


def read_metadata(directory: Path) -> dict:
    path = Path(directory) / METADATA_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def model_dir(root, dataset_key: str, model_kind: str) -> Path:
    return Path(root) / dataset_key / model_kind


def load_trained(spec, model_kind: str, root="checkpoints"):
    """The trained model of ``spec`` under ``<root>/<dataset>/<model_kind>``, in eval mode, with its metadata."""
    directory = model_dir(root, spec.key, model_kind)
    if not (directory / "model.safetensors").exists():
        raise FileNotFoundError(f"no trained {model_kind} model for {spec.key} in {directory}; "
                                f"train one with: python train.py --dataset {spec.key} --model {model_kind}")
    return spec.model_class.from_pretrained(directory), read_metadata(directory)
