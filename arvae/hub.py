"""Where the app's trained models come from, and a cache of the loaded ones.

Bundled files ``<checkpoints>/<dataset>/<model>/{config.json,model.safetensors}`` are the default.
When ``$ARVAE_HUB_REPO`` names a Hugging Face model repo, ``<dataset>/<model>/config.json`` and
``model.safetensors`` (and ``metadata.json`` when present) are fetched from it first -- into the
Hub cache, within :data:`HUB_TIMEOUT_S` in all (huggingface_hub retries with back-off for much
longer, so the download runs in a thread that is abandoned at the deadline) -- and the bundled
files are used whenever the Hub cannot be reached, is slow, or does not have them.
``$ARVAE_HUB_REVISION`` pins a revision. A Hub token (``$HF_TOKEN`` or the login cache) is only
ever handed to huggingface_hub; :func:`redact` keeps it out of messages and logs.

Models load lazily (first use) through :func:`arvae.checkpoint.load_trained`, once per process.

Beside the checkpoint's save: :func:`load` (any saved model in one call, from a folder or the Hub:
``config.json`` names its class) and :func:`push_to_hub` (a trained model folder with a model card).
"""
from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from arvae import checkpoint

log = logging.getLogger(__name__)

HUB_ENV = "ARVAE_HUB_REPO"
HUB_REVISION_ENV = "ARVAE_HUB_REVISION"
HUB_TIMEOUT_S = 4.0  # in all, per model: with loading the bundled files, a model is ready within 5 s
RETRY_AFTER_S = 300.0  # after a failed Hub request, use the bundled files for this long
REQUIRED_FILES = checkpoint.MODEL_FILES  # config.json, model.safetensors
OPTIONAL_FILES = (checkpoint.METADATA_FILE,)


def hub_repo() -> str | None:
    repo = os.environ.get(HUB_ENV, "").strip()
    return repo or None


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message says which and how to fix it."""


# ------------------------------------------------------------------------------------ validation

def check_model_dir(directory: Path) -> None:
    """Cheap integrity check of a model folder without loading it: ``config.json`` parses and the
    safetensors header is complete and consistent with the file size. Raises :class:`CheckpointError`."""
    directory = Path(directory)
    config, weights = directory / "config.json", directory / "model.safetensors"
    if not weights.is_file() or not config.is_file():
        missing = [p.name for p in (config, weights) if not p.is_file()]
        raise CheckpointError(f"missing {', '.join(missing)} in {directory}")
    try:
        parsed = json.loads(config.read_text())
        if not isinstance(parsed, dict):
            raise ValueError("not a JSON object")
    except Exception as error:
        raise CheckpointError(f"{config} is not valid JSON ({error})") from None
    size = weights.stat().st_size
    try:
        with open(weights, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError("file too short")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(size - 8, 100 * 2**20):
                raise ValueError("header length out of range")
            header = json.loads(handle.read(header_len))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        if not ends:
            raise ValueError("no tensors")
        if 8 + header_len + max(ends) != size:
            raise ValueError(f"size {size} does not match the header (truncated?)")
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{weights} is not a valid safetensors file ({error})") from None


# ------------------------------------------------------------------------------------------ Hub

_hub_lock = threading.Lock()
_hub_roots: dict[tuple, Path] = {}
_hub_failed_at: dict[str, float] = {}


def redact(text) -> str:
    """``text`` with the Hub token (``$HF_TOKEN``, ``$HUGGING_FACE_HUB_TOKEN`` or the login cache)
    replaced by ``hf_***``: for every message and log line that could quote a request."""
    text = str(text)
    tokens = {os.environ.get("HF_TOKEN", ""), os.environ.get("HUGGING_FACE_HUB_TOKEN", "")}
    try:
        from huggingface_hub import get_token

        tokens.add(get_token() or "")
    except Exception:
        pass
    for token in sorted((t.strip() for t in tokens if t and len(t.strip()) >= 8), key=len, reverse=True):
        text = text.replace(token, "hf_***")
    return text


def _download(repo: str, key: str, kind: str, revision: str | None, timeout: float) -> Path:
    from huggingface_hub import constants, hf_hub_download

    constants.HF_HUB_DOWNLOAD_TIMEOUT = min(float(constants.HF_HUB_DOWNLOAD_TIMEOUT), float(timeout))
    paths = {}
    for name in REQUIRED_FILES:
        paths[name] = Path(hf_hub_download(repo, f"{key}/{kind}/{name}", revision=revision, etag_timeout=timeout))
    for name in OPTIONAL_FILES:
        try:
            hf_hub_download(repo, f"{key}/{kind}/{name}", revision=revision, etag_timeout=timeout)
        except Exception:
            pass
    root = paths["config.json"].parents[2]
    check_model_dir(root / key / kind)
    return root


def fetch_from_hub(repo: str, key: str, kind: str, revision: str | None = None,
                   timeout: float = HUB_TIMEOUT_S) -> Path | None:
    """Download ``<key>/<kind>/`` of Hub repo ``repo`` into the Hub cache; returns the snapshot root
    (so that ``<root>/<key>/<kind>`` is the model folder), or None when the Hub cannot be reached,
    lacks the files, or has not delivered them within ``timeout`` seconds in all. Results are cached;
    a failure is not retried for :data:`RETRY_AFTER_S`."""
    cache_key = (repo, key, kind, revision)
    with _hub_lock:
        if cache_key in _hub_roots:
            return _hub_roots[cache_key]
        failed = _hub_failed_at.get(repo)
        if failed is not None and time.monotonic() - failed < RETRY_AFTER_S:
            return None
    outcome: dict = {}

    def work():
        try:
            outcome["root"] = _download(repo, key, kind, revision, timeout)
        except Exception as exc:  # offline, timeout, missing repo/file, bad download
            outcome["error"] = exc

    # huggingface_hub retries a request that timed out, with back-off (about a minute in all):
    # wait for it at most `timeout` seconds; a late download is abandoned (daemon thread)
    worker = threading.Thread(target=work, name=f"hub-fetch-{key}-{kind}", daemon=True)
    worker.start()
    worker.join(timeout)
    error = outcome.get("error")
    if worker.is_alive():
        error = TimeoutError(f"no complete answer within {timeout:g} s")
    if error is not None or "root" not in outcome:
        log.warning("could not fetch %s/%s from the Hub repo %s (%s); using the bundled files",
                    key, kind, repo, redact(f"{type(error).__name__}: {error}"))
        with _hub_lock:
            _hub_failed_at[repo] = time.monotonic()
        return None
    root = outcome["root"]
    with _hub_lock:
        _hub_roots[cache_key] = root
    return root


# ------------------------------------------------------------------------------------ the store

@dataclass
class LoadedModel:
    model: object
    metadata: dict
    origin: str  # where it came from, for display


@dataclass
class ModelStore:
    """Loads each (dataset, model kind) once, on first use, and keeps it."""

    root: Path
    _models: dict = field(default_factory=dict)
    _locks: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bundled_dir(self, key: str, kind: str) -> Path:
        return checkpoint.model_dir(self.root, key, kind)

    def status(self, key: str, kind: str) -> tuple[bool, str]:
        """(usable, reason): cheap check, no loading. A Hub repo counts as usable (fetched later)."""
        try:
            check_model_dir(self.bundled_dir(key, kind))
            return True, ""
        except CheckpointError as error:
            if hub_repo():
                return True, f"bundled files unusable ({error}); will fetch from the Hub repo {hub_repo()}"
            return False, str(error)

    def _key_lock(self, key: str, kind: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault((key, kind), threading.Lock())

    def get(self, spec, kind: str) -> LoadedModel:
        """The model of ``spec`` (a registry entry) and ``kind``; raises :class:`CheckpointError`."""
        cache_key = (spec.key, kind)
        if cache_key in self._models:
            return self._models[cache_key]
        with self._key_lock(spec.key, kind):
            if cache_key in self._models:
                return self._models[cache_key]
            candidates = []
            repo = hub_repo()
            if repo:
                hub_root = fetch_from_hub(repo, spec.key, kind, os.environ.get(HUB_REVISION_ENV) or None)
                if hub_root is not None:
                    candidates.append((hub_root, f"Hugging Face Hub: {repo}"))
            candidates.append((self.root, f"bundled: {self.bundled_dir(spec.key, kind)}"))
            errors = []
            for root, origin in candidates:
                try:
                    check_model_dir(checkpoint.model_dir(root, spec.key, kind))
                    model, metadata = checkpoint.load_trained(spec, kind, root)
                    from arvae.models import prepare_for_inference

                    prepare_for_inference(model)  # eval mode, fast CPU layout (channels-last convolutions)
                    loaded = LoadedModel(model, metadata, origin)
                    self._models[cache_key] = loaded
                    log.info("loaded %s/%s from %s", spec.key, kind, origin)
                    return loaded
                except Exception as error:
                    errors.append(f"{origin}: {error}")
            raise CheckpointError(f"The {kind} model for {spec.display_name} could not be loaded ("
                                  + redact("; ".join(errors)) + f"). Train it with: python train.py --dataset {spec.key} "
                                  f"--model {kind}")

    def loaded(self) -> list[tuple[str, str]]:
        return list(self._models)


# ------------------------------------------------------------------------------ load and push

def model_class(config: dict, folder: Path):
    """The class ``config.json`` names (``model_class``); for models saved before it did, the
    registry's class of the dataset whose folder holds it (``<root>/<dataset>/<model kind>``)."""
    from arvae import models, registry

    name = config.get("model_class")
    if name is not None:
        cls = getattr(models, name, None)
        if not (isinstance(cls, type) and issubclass(cls, models.VAE)):
            raise CheckpointError(f"{folder / 'config.json'} names an unknown model class {name!r}")
        return cls
    key = folder.parent.name
    if key in registry.DATASETS:
        return registry.get(key).model_class
    raise CheckpointError(f"{folder / 'config.json'} does not say which model class it is (no 'model_class'); "
                          "save it again with this version")


def load(source, revision: str | None = None):
    """A trained model, in eval mode, in one call. ``source``: a model folder (``checkpoints/mnist/arvae``)
    or a Hub id, ``owner/repo`` or ``owner/repo/<folder in the repo>`` (``owner/repo/mnist/arvae``).
    Safetensors only; raises :class:`CheckpointError` with what is wrong."""
    folder = Path(source)
    if not folder.is_dir():
        parts = str(source).strip("/").split("/")
        if len(parts) < 2:
            raise CheckpointError(f"{source!r} is neither a model folder nor a Hub id (owner/repo[/folder])")
        from huggingface_hub import snapshot_download

        subfolder = "/".join(parts[2:])
        try:
            snapshot = snapshot_download("/".join(parts[:2]), revision=revision,
                                         allow_patterns=[f"{subfolder}/{name}" if subfolder else name
                                                         for name in REQUIRED_FILES + OPTIONAL_FILES])
        except Exception as error:
            raise CheckpointError(redact(f"could not fetch {source} from the Hub ({type(error).__name__}: {error})"))
        folder = Path(snapshot) / subfolder
    check_model_dir(folder)
    cls = model_class(json.loads((folder / "config.json").read_text()), folder)
    return cls.from_pretrained(folder)


def model_card(model_dir: Path, spec, model_kind: str, repo_id: str) -> str:
    """The Hub model card (README.md) of a trained model folder, following the Hub's conventions: front
    matter with library, license, tags, pipeline tag, this project's and the paper's addresses and the
    evaluation results (``model-index``) read from ``<dataset>/metrics.json``; a body with the same
    results as a table, the training run and how to load it."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from arvae import LICENSE, PAPER_URL, PROJECT_URL
    from arvae.evaluate import METRIC_LABELS, MODEL_HEADINGS, TABLE_METRICS
    from arvae.models import HUB_TAGS
    from arvae.registry import MODEL_KINDS

    model_dir = Path(model_dir)
    meta = checkpoint.read_metadata(model_dir)
    try:
        results = json.loads((model_dir.parent / "metrics.json").read_text()).get(model_kind, {})
    except (OSError, ValueError):
        results = {}
    scores = {name: results[name] for name in TABLE_METRICS if isinstance(results.get(name), (int, float))}
    labels = {name: METRIC_LABELS[name].removesuffix(" %") for name in scores}  # fractions here, not %
    task = "image-to-image" if spec.domain == "image" else "other"
    data = ModelCardData(
        library_name="arvae", license=LICENSE, pipeline_tag=task, model_name=f"{spec.key}-{model_kind}",
        tags=[*HUB_TAGS, spec.domain, spec.key, model_kind], repo_url=PROJECT_URL, paper_url=PAPER_URL,
        eval_results=[EvalResult(task_type=task, dataset_type=spec.key, dataset_name=spec.display_name,
                                 dataset_split="test", metric_type=name, metric_name=labels[name],
                                 metric_value=round(float(value), 4)) for name, value in scores.items()] or None)
    column = MODEL_KINDS.index(model_kind)  # of the registry's (AR-VAE, beta-VAE) paper medians

    def table_row(name, value):
        paper = spec.paper_medians.get(name)
        return f"| {labels[name]} | {value:.3f} | {f'{paper[column]:.3f}' if paper else '–'} |"

    table = ("\n".join(["| metric | this model | paper median |", "| --- | --- | --- |",
                        *(table_row(name, value) for name, value in scores.items())])
             if scores else "Not evaluated yet: run `python -m arvae.evaluate`.")
    body = (f"# {spec.display_name}: {MODEL_HEADINGS.get(model_kind, model_kind)}\n\n"
            f"An attribute-regularized VAE ([Pati & Lerch]({PAPER_URL})) from [AR-VAE Explorer]({PROJECT_URL}). "
            "Regularized attributes and their latent dims: "
            + ", ".join(f"{a} → z[{d}]" for a, d in zip(spec.attribute_names, spec.regularized_dims))
            + (" (the β-VAE baseline is trained without the regularizer)" if model_kind != "arvae" else "")
            + f".\n\n## Evaluation (held-out test split)\n\n{table}\n\n## Training\n\n"
            f"Data: {meta.get('data', {}).get('source')}. Steps: {meta.get('steps')} ({meta.get('epochs')} epochs) "
            f"on {meta.get('hardware')}. Command: `{meta.get('command')}`.\n\n## Use\n\n"
            f"```python\nfrom arvae import hub\nmodel = hub.load(\"{repo_id}/{spec.key}/{model_kind}\")\n```\n")
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def push_to_hub(model_dir: Path, repo_id: str, spec, model_kind: str) -> bool:
    """Upload a trained model folder to ``<repo_id>/<dataset>/<model kind>`` with its model card
    (:func:`model_card`, also left in the folder as README.md). Offline or without a token it says so
    and the local files stay; the token ($HF_TOKEN or the login cache) is read by huggingface_hub and
    never printed (:func:`redact`). True when pushed."""
    from huggingface_hub import HfApi, get_token

    model_dir = Path(model_dir)
    (model_dir / "README.md").write_text(model_card(model_dir, spec, model_kind, repo_id), encoding="utf-8")
    if get_token() is None:
        print(f"not pushed: no Hugging Face token (set HF_TOKEN or run `hf auth login`); files stay in {model_dir}")
        return False
    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, path_in_repo=f"{spec.key}/{model_kind}",
                          allow_patterns=["config.json", "model.safetensors", "metadata.json", "README.md"])
    except Exception as error:  # network down, auth refused, ...: the local files stay
        print(redact(f"not pushed to {repo_id}: {type(error).__name__}: {error}. Local files stay in {model_dir}"))
        return False
    print(f"pushed {model_dir} to https://huggingface.co/{repo_id}/tree/main/{spec.key}/{model_kind}")
    return True
