"""The explorer core: everything a tab of the app computes, for any dataset of the registry, with
no Gradio in sight -- so that it can be unit-tested and scripted (``benchmarks/``).

:class:`Explorer` serves one dataset: its lazily loaded models (:class:`arvae.hub.ModelStore`),
its held-out sample, the attribute dim of each attribute for either model (the regularized dim
for AR-VAE; for the beta-VAE the dim with the highest mutual information, as in the paper's
evaluation), and what the tabs show: encodings, decodings, codes composed from sliders, traversals
(Figs. 9-11), attribute surfaces (Figs. 12/13), model comparisons and the measured attributes.
The functions above it check what a visitor or an API call sends and say clearly what is wrong
(``ValueError``), so that bad input never crashes anything.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arvae import hub, metrics, registry, traversal
from arvae import samples as samples_mod
from arvae.music.tokens import MEASURE_TICKS, VOCAB_SIZE, as_measures

MODEL_CHOICES = [("AR-VAE", "arvae"), ("β-VAE", "beta-vae")]
MODEL_LABEL = {value: label for label, value in MODEL_CHOICES}
SPAN = traversal.SPAN
DEFAULT_STEPS = 9
MAX_STEPS = 17
SURFACE_RESOLUTIONS = (8, 32)


# ============================================================================= checking what comes in

def format_z(z) -> str:
    """A latent code as the JSON text the app shows and takes (4 decimals)."""
    return json.dumps([round(float(v), 4) for v in np.asarray(z).reshape(-1)])


def parse_z(text, latent_dim: int) -> np.ndarray:
    """A latent code from JSON text or a list: ``latent_dim`` finite numbers, clipped to +-50."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ValueError("no latent code yet: load an input first (upload, example, or sample from the prior)")
    try:
        values = json.loads(text) if isinstance(text, str) else text
        z = np.asarray(values, dtype=np.float32).reshape(-1)
    except Exception:
        raise ValueError(f"the latent code must be a JSON list of {latent_dim} numbers, got {str(text)[:80]!r}") from None
    if z.shape != (latent_dim,) or not np.all(np.isfinite(z)):
        raise ValueError(f"the latent code must be a list of {latent_dim} finite numbers, got {z.size}")
    return np.clip(z, -50, 50)


def parse_measures(text) -> np.ndarray:
    """A measure (24 tokens) or measures ``(M, 24)`` from JSON text or a list."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ValueError("no measure yet: pick one from the held-out sample, upload a file, or sample from the prior")
    try:
        arr = np.asarray(json.loads(text) if isinstance(text, str) else text)
    except Exception:
        raise ValueError(f"a measure must be a JSON list of {MEASURE_TICKS} tokens, got {str(text)[:80]!r}") from None
    if arr.dtype.kind not in "iuf":  # text, or integers too large for int64 (an object array)
        raise ValueError(f"tokens must be integers from 0 to {VOCAB_SIZE - 1} (numbers, not text), "
                         f"got {str(text)[:80]!r}")
    return as_measures(arr)


def check_kind(kind: str) -> str:
    """A model kind from its value (``"arvae"``) or its label (``"AR-VAE"``)."""
    if kind in MODEL_LABEL:
        return kind
    by_label = {label: value for label, value in MODEL_CHOICES}
    if kind in by_label:
        return by_label[kind]
    raise ValueError(f"unknown model {kind!r}; use 'arvae' or 'beta-vae'")


def whole_number(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer argument from the UI or the API (int, integral float, numeric text), or a clear
    ``ValueError`` for a missing, non-numeric, NaN, infinite, fractional or out-of-range value."""
    if value is None or isinstance(value, bool):
        raise ValueError(f"{name} is missing: give a whole number" + (f" from {lo} to {hi}" if lo is not None else ""))
    shown = str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."  # an API may send 400 digits
    if isinstance(value, (int, np.integer)):
        number = int(value)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name} must be a whole number, got {shown!r}") from None
        if not np.isfinite(number) or number != int(number):
            raise ValueError(f"{name} must be a whole number, got {shown}")
        number = int(number)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise ValueError(f"{name} must be between {lo} and {hi}, got {shown}")
    return number


def check_steps(steps) -> int:
    return whole_number(DEFAULT_STEPS if steps is None else steps, "steps", 2, MAX_STEPS)


def pretty(name: str) -> str:
    return name.replace("_", " ")


def slider_value(value) -> float:
    """A latent value as a slider shows it: within -4..4, two decimals."""
    return round(float(np.clip(value, -SPAN, SPAN)), 2)


# ============================================================================= one dataset

class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int = 32):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = make()
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


@dataclass(frozen=True)
class Traversal:
    """Every attribute's dim swept from -4 to 4 around one code: ``values`` (S,), ``decoded``
    (L, S, ...) data, ``measured`` (L, S) attribute l measured along traversal l, ``dims`` (L),
    ``code`` the latent code swept around (D,)."""

    values: np.ndarray
    decoded: np.ndarray
    measured: np.ndarray
    dims: list
    code: np.ndarray


class Explorer:
    """What the tab of one dataset computes. Cheap to build (reads checkpoint headers and the small
    held-out sample); models load on first use."""

    def __init__(self, spec, store: hub.ModelStore, root: Path):
        self.spec, self.store, self.root = spec, store, Path(root)
        self.latent_dim = spec.latent_dim
        self.status = {kind: store.status(spec.key, kind) for kind in registry.MODEL_KINDS}
        self.encodings = LRU(128)
        self.results = LRU(32)
        self._dims: dict = {}
        self._dims_lock = threading.Lock()
        try:
            self._samples, self.samples_error = samples_mod.load_samples(spec.key, root), ""
        except Exception as error:
            self._samples, self.samples_error = None, str(error)

    # ----- what is there
    @property
    def available(self) -> bool:
        return self.status["arvae"][0]

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in registry.MODEL_KINDS if self.status[kind][0]]

    @property
    def has_samples(self) -> bool:
        return self._samples is not None

    @property
    def samples(self) -> samples_mod.Samples:
        if self._samples is None:
            raise FileNotFoundError(self.samples_error or f"no held-out sample for {self.spec.key}")
        return self._samples

    def model(self, kind: str):
        kind = check_kind(kind)
        if not self.status[kind][0]:
            raise hub.CheckpointError(f"no usable {MODEL_LABEL[kind]} checkpoint for {self.spec.display_name} "
                                      f"({self.status[kind][1]})")
        return self.store.get(self.spec, kind).model

    def availability_notes(self) -> str:
        notes = []
        if not self.status["beta-vae"][0]:
            notes.append(f"The β-VAE checkpoint is not available ({self.status['beta-vae'][1]}); only AR-VAE is shown.")
        if not self.has_samples:
            notes.append(f"No held-out sample is shipped ({self.samples_error}); examples are disabled, "
                         "use an upload or a sample from the prior.")
        return "\n\n".join(notes)

    # ----- inputs
    def example(self, index) -> np.ndarray:
        """Held-out item ``index`` (a raw model input: uint8 image or tokens)."""
        data = self.samples
        return data.inputs[whole_number(index, "the held-out item", 0, len(data) - 1)]

    def describe(self, index: int) -> str:
        return self.samples.describe(index, self.spec.label_name)

    def prepare_upload(self, path):
        """An uploaded file -> what the dataset's input makes of it (registry ``input.prepare``)."""
        if path is None:
            raise ValueError("no file was uploaded")
        return self.spec.input.prepare(path)

    def prior_code(self, seed) -> np.ndarray:
        """A code drawn from the prior N(0, I); ``seed`` None or negative: a random one."""
        seed = None if seed is None else whole_number(seed, "the seed")
        seed = None if seed is None or seed < 0 else seed
        return np.random.default_rng(seed).standard_normal(self.latent_dim).astype(np.float32)

    # ----- latent codes
    def encode(self, kind: str, raw_input) -> np.ndarray:
        """Posterior mean of one raw input (an image ``(H, W)``, uint8 or float in [0, 1], or a
        measure of tokens), through the model's own ``preprocess``; cached."""
        arr = np.ascontiguousarray(raw_input)
        expected = int(np.prod(self.spec.input.shape))
        if arr.size != expected:
            raise ValueError(f"an input of {self.spec.display_name} has shape {self.spec.input.shape}, "
                             f"got {arr.shape}")
        key = (kind, arr.dtype.str, arr.shape, hashlib.sha1(arr.tobytes()).hexdigest())

        def make():
            inputs = torch.from_numpy(arr.reshape(1, *self.spec.input.shape))
            return traversal.encode(self.model(kind), inputs)[0].numpy().astype(np.float32)

        return self.encodings.get(key, make)

    def decode(self, kind: str, z) -> np.ndarray:
        """Codes ``(D,)`` or ``(N, D)`` -> data ``(N, ...)``: images in [0, 1] or tokens."""
        z = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        return traversal.decode(self.model(kind), z)

    def measure(self, decoded) -> np.ndarray:
        """The registry's attributes of data ``(N, ...)``: ``(N, L)``, NaN where undefined."""
        with np.errstate(all="ignore"):
            return np.asarray(self.spec.measure(decoded), dtype=np.float64)

    def attribute_dims(self, kind: str) -> tuple[list[int], str]:
        """Latent dim of each attribute and where that choice comes from."""
        kind = check_kind(kind)
        if kind == "arvae":
            return list(self.spec.regularized_dims), "regularized dims (AR-VAE)"
        with self._dims_lock:
            if kind not in self._dims:
                self._dims[kind] = self._mi_dims(kind)
            return self._dims[kind]

    def _mi_dims(self, kind: str) -> tuple[list[int], str]:
        """The beta-VAE's dims: from ``metrics.json`` when evaluated, else by mutual information
        on the held-out sample (or on decoded prior samples when none ships)."""
        names = list(self.spec.attribute_names)
        try:
            chosen = json.loads((self.root / self.spec.key / "metrics.json").read_text())[kind]["attribute_dims"]
            return [int(chosen[name]) for name in names], "highest mutual information, from metrics.json"
        except Exception:
            pass
        if self.has_samples:
            z = traversal.encode(self.model(kind), self._samples.model_inputs()).numpy()
            attributes = self._samples.attributes.astype(np.float64)
            source = f"highest mutual information on the {len(z)} held-out items"
        else:
            z = np.random.default_rng(0).standard_normal((256, self.latent_dim)).astype(np.float32)
            attributes = self.measure(self.decode(kind, z))
            source = "highest mutual information on 256 prior samples"
        finite = np.isfinite(attributes).all(axis=1)
        if finite.sum() < 8:
            return list(self.spec.regularized_dims), "too little data for mutual information; showing dims 0..L-1"
        dims = metrics.attribute_dims_by_mutual_information(z[finite], attributes[finite])
        return [int(d) for d in dims], source

    def slider_dims(self, kind: str) -> list[int | None]:
        """The dim each attribute slider drives; None for an attribute whose dim an earlier
        attribute already drives (beta-VAE: one dim can be the best for two attributes)."""
        dims, _ = self.attribute_dims(kind)
        seen, out = set(), []
        for d in dims:
            out.append(None if d in seen else d)
            seen.add(d)
        return out

    def compose(self, kind: str, base, attribute_values, dim_values=None) -> np.ndarray:
        """A latent code from the sliders: ``base`` (the current code, text or list; None: zeros),
        every dim from ``dim_values`` (the Advanced sliders) when all are given, then the
        attribute dims from ``attribute_values`` (None leaves a dim as it is)."""
        z = np.zeros(self.latent_dim, np.float32) if base is None else parse_z(base, self.latent_dim).copy()
        if dim_values is not None and len(dim_values) == self.latent_dim:
            z = np.asarray([float(v) if v is not None else z[i] for i, v in enumerate(dim_values)], np.float32)
        for dim, value in zip(self.slider_dims(kind), attribute_values):
            if dim is not None and value is not None:
                z[dim] = float(value)
        return z

    # ----- traversals, surfaces, comparisons
    def traverse(self, kind: str, z: np.ndarray, steps: int) -> Traversal:
        """Every attribute's dim swept from -4 to 4 around ``z`` (one batch), decoded and measured."""
        dims, _ = self.attribute_dims(kind)
        steps = check_steps(steps)
        z = np.asarray(z, dtype=np.float32).reshape(self.latent_dim)
        key = ("traverse", kind, z.round(4).tobytes(), steps, tuple(dims))

        def make():
            values, decoded, measured = traversal.traverse(self.model(kind), self.measure, torch.from_numpy(z[None]),
                                                           dims, steps)
            return Traversal(values, decoded[:, 0], measured[:, 0], dims, z)

        return self.results.get(key, make)

    def compare(self, raw_input, steps: int) -> dict[str, Traversal]:
        """One input encoded and traversed by each model: model kind -> :class:`Traversal`."""
        return {kind: self.traverse(kind, self.encode(kind, raw_input), steps) for kind in registry.MODEL_KINDS}

    def surface(self, kind: str, z: np.ndarray, attribute: str, other_dim, resolution):
        """``attribute`` measured over the plane of its dim (x) and ``other_dim`` (y) through ``z``:
        ``(surface (R, R), dim_x, dim_y)``, rows = y, from -4 to 4 on both axes."""
        names = list(self.spec.attribute_names)
        if attribute not in names:
            raise ValueError(f"unknown attribute {attribute!r}; expected one of {names}")
        index = names.index(attribute)
        dims, _ = self.attribute_dims(kind)
        dim_x = int(dims[index])
        dim_y = whole_number(other_dim, "the other dim", 0, self.latent_dim - 1)
        if dim_y == dim_x:
            raise ValueError(f"the other dim must differ from the attribute's dim z[{dim_x}]")
        resolution = whole_number(resolution, "resolution", *SURFACE_RESOLUTIONS)
        z = np.asarray(z, dtype=np.float32).reshape(self.latent_dim)
        key = ("surface", kind, z.round(4).tobytes(), index, dim_y, resolution)

        def make():
            with np.errstate(all="ignore"):
                return traversal.attribute_surface(self.model(kind), self.spec.measure, torch.from_numpy(z), dim_x,
                                                   dim_y, index, resolution)

        return self.results.get(key, make), dim_x, dim_y

    # ----- what the tab says
    def format_value(self, name: str, value) -> str:
        """A measured value as the tables show it: the value's name for categorical attributes
        ("none" where the output is none of the values, e.g. a sprite drawn as a blob)."""
        labels = self.spec.value_labels.get(name)
        if value is None or not np.isfinite(value):
            return "none" if labels else "—"
        if labels:
            return labels[int(np.clip(round(value), 0, len(labels) - 1))]
        return f"{value:.3f}"

    def attribute_table(self, columns: dict, kind: str) -> str:
        """A markdown table: a row per attribute (its dim), a column per entry of ``columns``
        (name -> ``(L,)`` values)."""
        dims, _ = self.attribute_dims(kind)
        header = "| attribute | dim | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns) + "\n"
        rows = []
        for l, name in enumerate(self.spec.attribute_names):
            cells = [self.format_value(name, float(col[l])) if col is not None else "—" for col in columns.values()]
            rows.append(f"| {pretty(name)} | z[{dims[l]}] | " + " | ".join(cells) + " |")
        return header + "\n".join(rows)

    def dims_note(self, kind: str) -> str:
        dims, source = self.attribute_dims(kind)
        pairs = ", ".join(f"{pretty(n)} → z[{d}]" for n, d in zip(self.spec.attribute_names, dims))
        shared = [n for n, d in zip(self.spec.attribute_names, self.slider_dims(kind)) if d is None]
        note = f"**{MODEL_LABEL[kind]}** attribute dims ({source}): {pairs}."
        if shared:
            note += (" One dim carries several attributes here, so the sliders of " + ", ".join(map(pretty, shared))
                     + " follow the first attribute with the same dim.")
        return note

    def y_choices(self, kind: str, attribute: str) -> tuple[list[tuple[str, int]], int]:
        """The dims a surface can use as its y axis for ``attribute`` (labelled with the attribute
        they carry) and the default: the first dim that carries none."""
        dims, _ = self.attribute_dims(kind)
        names = list(self.spec.attribute_names)
        dim_x = dims[names.index(attribute)] if attribute in names else dims[0]
        owners = {}
        for name, d in zip(names, dims):
            owners.setdefault(d, name)
        choices = [(f"z[{d}]" + (f" ({pretty(owners[d])})" if d in owners else ""), d)
                   for d in range(self.latent_dim) if d != dim_x]
        default = next((d for _, d in choices if d not in owners), choices[0][1])
        return choices, default


def explorers(root=None) -> dict[str, Explorer]:
    """An :class:`Explorer` for every dataset of the registry, sharing one model store."""
    root = samples_mod.checkpoints_root(root)
    store = hub.ModelStore(root)
    return {key: Explorer(spec, store, root) for key, spec in registry.DATASETS.items()}
