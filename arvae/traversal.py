"""Latent traversals and attribute surfaces: pure, batched computation shared by
evaluation and the app."""
from __future__ import annotations

import contextlib
import functools
import os

import numpy as np
import torch

from arvae import metrics

SPAN = 4.0  # the paper traverses each regularized dim from -4 to 4
# attribute surfaces of image models decode in bfloat16 where the CPU computes it natively (about
# twice as fast; Bernoulli probabilities within ~0.01, so the measured surface is the same to the
# eye -- tests/test_fast_decoding.py); ARVAE_SURFACE_BF16=0 keeps float32
SURFACE_BF16_ENV = "ARVAE_SURFACE_BF16"
SURFACE_CHUNK = 64  # latents per decode/measure chunk of a surface (64-128: ~20 % faster than 256 on a 2-core EPYC)


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX); elsewhere
    bfloat16 is emulated and slower than float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # pragma: no cover (private API moved)
        return False


def surface_precision(model) -> str:
    """``"bf16"`` for the decodes of an attribute surface when worth it (image model, native bfloat16
    on CPU, not switched off by ``$ARVAE_SURFACE_BF16=0``), else ``"fp32"``."""
    if os.environ.get(SURFACE_BF16_ENV, "1").strip() == "0" or getattr(model, "domain", None) != "image":
        return "fp32"
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    on_gpu = param is not None and param.device.type == "cuda"
    return "bf16" if on_gpu or native_bf16() else "fp32"


@torch.no_grad()
def encode(model, inputs: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Posterior means ``(N, D)`` of raw dataset inputs, in batches."""
    model.eval()
    return torch.cat([model.encode(model.preprocess(inputs[i:i + batch_size]))[0]
                      for i in range(0, len(inputs), batch_size)]) if len(inputs) else torch.empty(0)


@torch.no_grad()
def decode(model, z: torch.Tensor, batch_size: int = 256, precision: str = "fp32") -> np.ndarray:
    """Decode latents into data space as numpy: images ``(N, H, W)`` in [0, 1] or tokens ``(N, 24)``.

    ``precision="bf16"`` runs the model under bfloat16 autocast (outputs are float32 again);
    batches of 256 keep oneDNN's working set in cache."""
    model.eval()
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    if param is not None:
        z = z.to(param.device)
    autocast = (torch.autocast(z.device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    with autocast:
        outputs = [model.generate(z[i:i + batch_size]) for i in range(0, len(z), batch_size)]
    data = torch.cat(outputs)
    data = (data.float() if data.is_floating_point() else data).cpu().numpy()
    return data[:, 0] if data.ndim == 4 else data


def traversal_values(steps: int, span: float = SPAN) -> np.ndarray:
    return np.linspace(-span, span, steps, dtype=np.float32)


def traversal_latents(z: torch.Tensor, dim: int, values) -> torch.Tensor:
    """Each code in ``z`` ``(N, D)`` with ``dim`` set to each of ``values``: ``(N, steps, D)``."""
    values = torch.as_tensor(np.asarray(values), dtype=z.dtype)
    grid = z.unsqueeze(1).repeat(1, len(values), 1)
    grid[:, :, dim] = values
    return grid


def surface_latents(z: torch.Tensor, dim_x: int, dim_y: int, resolution: int, span: float = SPAN) -> torch.Tensor:
    """A ``resolution x resolution`` plane through code ``z`` ``(D,)``: ``(resolution**2, D)``, row-major in y."""
    values = torch.as_tensor(traversal_values(resolution, span), dtype=z.dtype)
    grid = z.reshape(1, -1).repeat(resolution * resolution, 1)
    grid_y, grid_x = torch.meshgrid(values, values, indexing="ij")
    grid[:, dim_x] = grid_x.reshape(-1)
    grid[:, dim_y] = grid_y.reshape(-1)
    return grid


def attribute_surface(model, measure, z: torch.Tensor, dim_x: int, dim_y: int, attribute_index: int,
                      resolution: int = 32, span: float = SPAN) -> np.ndarray:
    """Measured attribute over a latent plane (Fig. 12/13): ``(resolution, resolution)``, rows = y.

    Image models decode in :func:`surface_precision`. The plane is decoded in chunks, and each
    chunk is measured in a helper thread while the next one decodes (torch and most of the
    measuring release the GIL), so decoding and measuring overlap."""
    latents = surface_latents(z, dim_x, dim_y, resolution, span)
    precision = surface_precision(model)
    measure = surface_measure(measure, attribute_index)
    chunk = SURFACE_CHUNK if len(latents) > SURFACE_CHUNK else len(latents)
    if chunk == len(latents):
        measured = measure(decode(model, latents, precision=precision))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="surface-measure") as pool:
            futures = [pool.submit(measure, decode(model, latents[i:i + chunk], precision=precision))
                       for i in range(0, len(latents), chunk)]
            measured = np.concatenate([f.result() for f in futures])
    return measured[:, attribute_index].reshape(resolution, resolution)


def surface_measure(measure, attribute_index: int):
    """``measure`` limited to the attribute a surface shows where it can be (MNIST: no medial axis
    for area), else ``measure`` itself."""
    import inspect

    try:
        accepts = "attributes" in inspect.signature(measure).parameters
    except (TypeError, ValueError):
        accepts = False
    return functools.partial(measure, attributes=[attribute_index]) if accepts else measure


def traverse(model, measure, z: torch.Tensor, dims, steps: int = 9, span: float = SPAN):
    """For each attribute l: decode ``z`` ``(N, D)`` with ``dims[l]`` swept over ``steps`` values and
    measure what was decoded (Figs. 9-11). All traversals are decoded in one batch.

    Returns ``(values (steps,), decoded (L, N, steps, ...), measured (L, N, steps))`` where
    ``measured[l]`` is attribute l of the decoded traversal of dim ``dims[l]``.
    """
    values = traversal_values(steps, span)
    latents = torch.stack([traversal_latents(z, dim, values) for dim in dims])   # (L, N, steps, D)
    decoded = decode(model, latents.reshape(-1, z.shape[1]))
    attributes = measure(decoded).reshape(len(dims), len(z), steps, -1)
    measured = np.stack([attributes[l, :, :, l] for l in range(len(dims))])
    return values, decoded.reshape(len(dims), len(z), steps, *decoded.shape[1:]), measured


def unwrap_angles(spec, measured: np.ndarray, attributes: np.ndarray | None) -> np.ndarray:
    """``measured`` (L, N, S) of :func:`traverse_and_measure` with each angle of ``spec.periodic``
    unwrapped along its sweeps (:func:`arvae.metrics.unwrap_rows`) by the period that input ``n``'s
    ``attributes[n]`` give it (sprites: orientation by the shape's symmetry). Along a traversal a
    square turned on past a quarter turn looks turned by a little again: unwrapped, it reads as
    turning on, as it does on screen, rather than as jumping back."""
    if spec.periodic and attributes is None:
        raise ValueError(f"{spec.key}: unwrapping {', '.join(spec.periodic)} needs the inputs' attributes")
    names = list(spec.attribute_names)
    unwrapped = np.array(measured, dtype=np.float64)
    for name, (by, periods) in spec.periodic.items():
        l = names.index(name)
        period = np.asarray(periods, dtype=np.float64)[np.asarray(attributes)[:, names.index(by)].astype(np.int64)]
        unwrapped[l] = metrics.unwrap_rows(unwrapped[l], period)
    return unwrapped


def traverse_and_measure(model, measure, z: torch.Tensor, dims, steps: int = 9, span: float = SPAN):
    """:func:`traverse` without the decoded data: ``(values (steps,), measured (L, N, steps))``."""
    values, _, measured = traverse(model, measure, z, dims, steps, span)
    return values, measured
