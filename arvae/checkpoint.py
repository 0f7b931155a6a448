"""Checkpoint files: the published model (config + safetensors + metadata) and the resumable
training state. Every file is written to a hidden temporary name in its folder, flushed to disk
(fsync) and atomically renamed into place (``os.replace``, then the folder is fsynced), so a killed
process -- even SIGKILL or a power cut -- never leaves half a checkpoint file: each name holds either
the previous complete version or the new one. The training state is one safetensors file whose
header also carries the step counter and the rest of the JSON state, so weights, optimizer and step
always belong together. Temporaries left by a killed process are removed by the next save
(:func:`remove_temporaries`). No pickle anywhere."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

MODEL_FILES = ("config.json", "model.safetensors")
METADATA_FILE = "metadata.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"  # a readable copy; the state in STATE_TENSORS' header is authoritative
STATE_KEY = "training_state"  # safetensors header metadata key holding the JSON state
TMP_SUFFIX = ".tmp"
STAGING_PREFIX = ".staging-"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary of an unfinished write (hidden ``.<name>.*.tmp`` or staging folder)."""
    name = Path(path).name
    return name.startswith(".") and (name.endswith(TMP_SUFFIX) or name.startswith(STAGING_PREFIX))


def remove_temporaries(directory: Path) -> list[Path]:
    """Delete the temporaries a killed writer left in ``directory``; returns what was removed.
    Only one process writes a checkpoint folder (rank 0 of a run), so nothing live is touched."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        if is_temporary(path):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync_file(path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform (e.g. Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_atomically(directory: Path, name: str, write) -> None:
    """``write(tmp_path)`` into a temporary of ``directory``, fsync it, rename it to ``name``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, directory / name)
        _fsync_dir(directory)
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
    directory.mkdir(parents=True, exist_ok=True)
    remove_temporaries(directory)
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=STAGING_PREFIX))
    try:
        model.save_pretrained(staging)
        store_weights_as(staging / "model.safetensors")
        for name in MODEL_FILES:
            _replace_atomically(directory, name, lambda tmp, name=name: os.replace(staging / name, tmp))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json(directory / METADATA_FILE, {**metadata, "weights_dtype": str(PUBLISHED_DTYPE).removeprefix("torch.")})


def publish_model(source: Path, destination: Path) -> None:
    """Copy a saved model's files (weights, config, then metadata) from a run folder to where it is
    published, each replacing its old version atomically."""
    for name in (*reversed(MODEL_FILES), METADATA_FILE):
        _replace_atomically(destination, name, lambda tmp, name=name: shutil.copyfile(Path(source) / name, tmp))


def save_training_state(directory: Path, model, optimizer, state: dict) -> None:
    """Model and optimizer tensors, and the rest of the state (step, epoch, ...) in the same
    safetensors file's header; a readable JSON copy beside it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    remove_temporaries(directory)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, per_param in optimizer_state["state"].items():
        for key, value in per_param.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).contiguous().cpu()
    full_state = {**state, "optimizer_param_groups": optimizer_state["param_groups"]}
    header = {STATE_KEY: json.dumps(full_state, sort_keys=True)}
    _replace_atomically(directory, STATE_TENSORS, lambda tmp: save_file(tensors, tmp, metadata=header))
    write_json(directory / STATE_JSON, full_state)


def read_training_state(directory: Path) -> dict | None:
    """The JSON state of the training state in ``directory`` (from the safetensors header; from
    ``training_state.json`` for files written before the state moved into the header), or None."""
    directory = Path(directory)
    if not (directory / STATE_TENSORS).exists():
        return None
    with safe_open(directory / STATE_TENSORS, framework="pt") as handle:
        embedded = (handle.metadata() or {}).get(STATE_KEY)
    if embedded is not None:
        return json.loads(embedded)
    if (directory / STATE_JSON).exists():
        return json.loads((directory / STATE_JSON).read_text())
    return None


def load_training_state(directory: Path, model, optimizer) -> dict | None:
    """Restore model and optimizer in place; returns the JSON state, or None if there is none."""
    directory = Path(directory)
    state = read_training_state(directory)
    if state is None:
        return None
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
