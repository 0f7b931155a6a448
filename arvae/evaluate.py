"""Evaluate trained AR-VAE and beta-VAE checkpoints on held-out data, as in the paper (Sect. 5).

    python -m arvae.evaluate --dataset all [--split test] [--num-samples N]

Writes ``<checkpoints>/<dataset>/metrics.json`` and prints a table. Metrics: Interpretability,
Modularity, MIG, SAP, SCC (per attribute and their mean), reconstruction accuracy, traversal
monotonicity (mean Spearman correlation between a traversed latent value and the attribute
measured on what was decoded), and content preservation where the registry gives a classifier
(MNIST digits, sprites shapes).

The disentanglement metrics are computed twice: on posterior means (the top-level fields) and, as
the reference code does (its trainers feed sampled latents z~ = mu + sigma * eps to the metrics),
on one sampled latent per held-out input (``sampled_latents``, seeded). Which latent dim stands for
an attribute is, for the beta-VAE, the dim of highest mutual information with it on posterior means
(``attribute_dims``); the per-attribute ``highest_mi_dim`` is what Interpretability reads.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch

from arvae import checkpoint, metrics, registry, traversal

MODEL_KINDS = registry.MODEL_KINDS
TABLE_METRICS = ("interpretability", "modularity", "mig", "sap", "scc", "reconstruction_accuracy",
                 "traversal_monotonicity")
SAMPLED_METRICS = ("interpretability", "modularity", "mig", "sap", "scc")  # also computed on z~


def held_out_sample(spec, split: str, num_samples: int | None, data_dir=None, seed: int = 0):
    data = spec.load_split(split, data_dir=data_dir)
    if num_samples and num_samples < len(data):
        data = data.subset(np.sort(np.random.default_rng(seed).choice(len(data), num_samples, replace=False)))
    return data


@torch.no_grad()
def reconstruction_accuracy(model, inputs: torch.Tensor, batch_size: int = 512) -> float:
    """Pixel accuracy of binarized reconstructions, or token accuracy of greedy decoding."""
    model.eval()
    correct = total = 0
    for start in range(0, len(inputs), batch_size):
        x = model.preprocess(inputs[start:start + batch_size])
        logits = model(x)[0]
        correct += float(model.reconstruction_accuracy(logits, x)) * x.numel()
        total += x.numel()
    return correct / total


@torch.no_grad()
def sample_latents(model, inputs: torch.Tensor, seed: int, batch_size: int = 512) -> torch.Tensor:
    """One z~ = mu + sigma * eps per input (the reference protocol), reproducible by ``seed``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for start in range(0, len(inputs), batch_size):
        mu, logvar = model.encode(model.preprocess(inputs[start:start + batch_size]))
        samples.append(mu + torch.randn(mu.shape, generator=generator) * (0.5 * logvar).exp())
    return torch.cat(samples)


def library_versions() -> dict[str, str]:
    """Versions of the libraries the metrics depend on, recorded beside them."""
    return {name: importlib.metadata.version(name) for name in ("numpy", "scipy", "scikit-learn", "torch")}


def traversal_monotonicity(model, spec, latents: torch.Tensor, dims, steps: int = 9, directions=None,
                           groups: dict | None = None, attributes: np.ndarray | None = None) -> dict:
    """Mean Spearman correlation between latent value and measured attribute along traversals.

    ``directions`` (+1/-1 per attribute, default all +1) orients each dim: a β-VAE's dims have no
    set direction (see :func:`dim_directions`); an AR-VAE's dims are ordered by its regularizer, so
    its correlations count as they come and a reversed attribute scores negative. ``groups``:
    attribute -> (labels of the inputs (N,), label names): that attribute's mean is also given per
    label (``by_label``), e.g. sprites' orientation per shape. Steps whose attribute is undefined (a
    blank output; a sprite drawn as a blob has no shape) are left out of their traversal's correlation
    (:func:`metrics.spearman_rows`); ``measured_share`` says, per attribute, how many steps were left.
    An angle known only modulo a period (``spec.periodic``: sprites' orientation) is unwrapped along
    each traversal first, by the period the inputs' ``attributes`` (N, A; needed then) give it
    (:func:`traversal.unwrap_angles`; not in the paper, whose θ runs over a full turn for every shape)."""
    values, measured = traversal.traverse_and_measure(model, spec.measure, latents, dims, steps)
    measured = traversal.unwrap_angles(spec, measured, attributes)
    directions = np.ones(len(dims)) if directions is None else np.asarray(directions, dtype=float)
    rho = {name: directions[l] * metrics.spearman_rows(values, measured[l]) for l, name in enumerate(spec.attribute_names)}
    by_label = {}
    for name, (labels, label_names) in (groups or {}).items():
        labels = np.asarray(labels)
        by_label[name] = {label: float(rho[name][labels == value].mean())
                          for value, label in enumerate(label_names) if (labels == value).any()}
    per_attribute = {name: float(r.mean()) for name, r in rho.items()}
    measured_share = {name: float(np.isfinite(measured[l]).mean()) for l, name in enumerate(spec.attribute_names)}
    return {"mean": float(np.mean(list(per_attribute.values()))), "per_attribute": per_attribute, "by_label": by_label,
            "measured_share": measured_share}


def dim_directions(latents: np.ndarray, attributes: np.ndarray, dims) -> np.ndarray:
    """+1 or -1 for each attribute l: the sign of the Spearman correlation of ``latents[:, dims[l]]``
    with attribute l over the held-out inputs, so that a β-VAE dim that encodes its attribute in
    reverse (nothing fixes its direction) has its traversal read the way the data orders it."""
    rho = metrics.spearman_rows(latents[:, list(dims)].T, attributes.T)
    return np.where(rho < 0, -1.0, 1.0)


def evaluate_model(spec, model_kind: str, data, root, mi_estimator: str, traversal_inputs: int = 100,
                   seed: int = 0) -> dict:
    model, meta = checkpoint.load_trained(spec, model_kind, root)
    latents = traversal.encode(model, data.inputs)
    attributes = data.attributes.numpy().astype(np.float64)
    finite = np.isfinite(attributes).all(axis=1)  # e.g. blank digits have no morphometrics
    result = metrics.compute_all(latents.numpy()[finite], attributes[finite], list(spec.attribute_names),
                                 estimator=mi_estimator)
    sampled = sample_latents(model, data.inputs, seed).numpy()[finite]
    result["sampled_latents"] = {**metrics.compute_all(sampled, attributes[finite], list(spec.attribute_names),
                                                       estimator=mi_estimator),
                                 "num_samples": int(finite.sum()), "samples_per_input": 1}
    dims = (list(spec.regularized_dims) if model_kind == "arvae" else
            metrics.attribute_dims_by_mutual_information(latents.numpy()[finite], attributes[finite],
                                                         estimator=mi_estimator))
    result["attribute_dims"] = {name: int(d) for name, d in zip(spec.attribute_names, dims)}
    directions = (np.ones(len(dims)) if model_kind == "arvae" else
                  dim_directions(latents.numpy()[finite], attributes[finite], dims))
    result["attribute_dim_directions"] = {name: int(d) for name, d in zip(spec.attribute_names, directions)}
    result["reconstruction_accuracy"] = reconstruction_accuracy(model, data.inputs)
    names = list(spec.attribute_names)
    groups = {name: (data.attributes[:traversal_inputs, names.index(by)].numpy().astype(int), spec.value_labels[by])
              for name, by in spec.monotonicity_by.items()}
    monotonicity = traversal_monotonicity(model, spec, latents[:traversal_inputs], dims, directions=directions,
                                          groups=groups, attributes=data.attributes[:traversal_inputs].numpy())
    result["traversal_monotonicity"] = monotonicity["mean"]
    result["traversal_measured_share"] = float(np.mean(list(monotonicity["measured_share"].values())))
    for name, value in monotonicity["per_attribute"].items():
        result["per_attribute"][name]["traversal_monotonicity"] = value
        result["per_attribute"][name]["traversal_measured_share"] = monotonicity["measured_share"][name]
    for name, by_label in monotonicity["by_label"].items():
        result["per_attribute"][name][f"traversal_monotonicity_by_{spec.monotonicity_by[name]}"] = by_label
    result["checkpoint"] = {k: meta.get(k) for k in ("steps", "epochs", "hardware", "seed", "wall_time_s")}
    if spec.content_classifier is not None:  # MNIST: a digit classifier (Sect. 5.3)
        preservation = spec.content_classifier(model, data, dims, root)
        for name, share in zip(spec.attribute_names, preservation.pop("traversals_per_dim", ())):
            result["per_attribute"][name]["content_preservation_traversals"] = share
        result["content_preservation"] = preservation
    return result


def format_table(spec, results: dict) -> str:
    header = f"{spec.display_name:<24}" + "".join(f"{kind:>12}" for kind in MODEL_KINDS)
    rows = [header, "-" * len(header)]
    for name in TABLE_METRICS:
        rows.append(f"{name:<24}" + "".join(
            f"{results[kind][name]:>12.3f}" if kind in results else f"{'-':>12}" for kind in MODEL_KINDS))
    return "\n".join(rows)


METRIC_LABELS = {"interpretability": "Interpretability", "mig": "MIG", "sap": "SAP", "scc": "SCC",
                 "modularity": "Modularity", "reconstruction_accuracy": "Reconstruction %",
                 "traversal_monotonicity": "Traversal monotonicity"}
MODEL_HEADINGS = {"arvae": "AR-VAE", "beta-vae": "β-VAE"}


def _cell(value, percent: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{100 * value:.2f}" if percent else f"{value:.3f}"


def metrics_markdown(root="checkpoints") -> str:
    """Every dataset's ``<root>/<key>/metrics.json`` as one markdown table per dataset, beside the
    paper's medians: the disentanglement metrics on posterior means and on sampled latents, then
    reconstruction, traversal monotonicity and content preservation. The app's About tab and
    ``python -m arvae.evaluate --markdown`` (the README's table) show this."""
    parts = []
    for spec in registry.DATASETS.values():
        path = Path(root) / spec.key / "metrics.json"
        data, note = {}, ""
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError) as error:
            note = f" (unreadable metrics.json: {error})"
        parts.append(f"#### {spec.display_name}")
        if not data:
            parts.append(f"*Not evaluated yet*{note} -- run `python -m arvae.evaluate --dataset {spec.key}`. "
                         "Paper medians shown for reference.")
        rows = ["| metric | " + " | ".join(f"{MODEL_HEADINGS[k]} (here)" for k in MODEL_KINDS) + " | "
                + " | ".join(f"{MODEL_HEADINGS[k]} (paper)" for k in MODEL_KINDS) + " |",
                "|---|" + "---|" * 2 * len(MODEL_KINDS)]

        def row(label, paper_key, value_of, percent=False):
            here = [_cell(value_of(data[kind]), percent) if kind in data else "not evaluated yet"
                    for kind in MODEL_KINDS]
            paper = spec.paper_medians.get(paper_key)
            if paper is None and all(cell in ("—", "not evaluated yet") for cell in here):
                return
            paper_cells = [_cell(v, percent) for v in paper] if paper else ["—"] * len(MODEL_KINDS)
            rows.append(f"| {label} | " + " | ".join(here + paper_cells) + " |")

        for name, label in METRIC_LABELS.items():
            row(label, name, lambda result: result.get(name), percent=name == "reconstruction_accuracy")
        for name in SAMPLED_METRICS:  # the reference protocol: one sampled z~ per input
            if "sampled_latents" in data.get("arvae", {}):
                row(f"{METRIC_LABELS[name]} (sampled z̃)", name,
                    lambda result: result.get("sampled_latents", {}).get(name))
        row("Traversal steps measured (attribute defined)", None, lambda result: result.get("traversal_measured_share"))
        for name, by in spec.monotonicity_by.items():  # e.g. orientation per shape: each has its symmetry
            for label in spec.value_labels.get(by, ()):
                row(f"Traversal monotonicity: {name.replace('_', ' ')} of {label}s", None,
                    lambda result: result.get("per_attribute", {}).get(name, {})
                    .get(f"traversal_monotonicity_by_{by}", {}).get(label))
        for part in data.get("arvae", {}).get("content_preservation", {}):  # classifier accuracy (Sect. 5.3)
            row(f"Content preservation ({part})", f"content_preservation_{part}",
                lambda result: result.get("content_preservation", {}).get(part))
        for name in spec.attribute_names:  # which attribute's traversal changes the digit
            row(f"Content preservation (traversals of {name.replace('_', ' ')})", None,
                lambda result: result.get("per_attribute", {}).get(name, {}).get("content_preservation_traversals"))
        parts.append("\n".join(rows))
        evaluated = data.get("evaluated_on", {})
        if evaluated:
            trained = [f"{MODEL_HEADINGS[kind]}: {meta.get('steps')} steps ({meta.get('epochs')} epochs) on "
                       f"{meta.get('hardware')}" for kind in MODEL_KINDS
                       if (meta := data.get(kind, {}).get("checkpoint") or {})]
            parts.append(f"<sub>Evaluated on {evaluated.get('num_samples')} {evaluated.get('split')} items, "
                         f"MI estimator {evaluated.get('mi_estimator')}. {'; '.join(trained)}.</sub>")
    parts.append("<sub>Paper values are medians over ten seeds read off Figs. 3, 5 and 7 of the paper "
                 "(reconstruction in %).</sub>")
    return "\n\n".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="all", choices=[*registry.DATASETS, "all"])
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--num-samples", type=int, default=5000, help="held-out items used (0: all)")
    parser.add_argument("--checkpoints", default="checkpoints", help="folder of trained models")
    parser.add_argument("--data-dir", help="dataset files, as for train.py")
    parser.add_argument("--mi-estimator", default="ksg", choices=["ksg", "histogram"],
                        help="mutual information estimator: k-NN as in the paper's code, or 20-bin histograms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true",
                        help="only print the committed metrics of all datasets as markdown tables")
    args = parser.parse_args(argv)
    if args.markdown:
        print(metrics_markdown(args.checkpoints))
        return
    keys = list(registry.DATASETS) if args.dataset == "all" else [args.dataset]
    for key in keys:
        spec = registry.get(key)
        torch.manual_seed(args.seed)
        data = held_out_sample(spec, args.split, args.num_samples or None, args.data_dir, args.seed)
        results = {kind: evaluate_model(spec, kind, data, args.checkpoints, args.mi_estimator, seed=args.seed)
                   for kind in MODEL_KINDS}
        results["evaluated_on"] = {"split": args.split, "num_samples": len(data), "source": data.source,
                                   "seed": args.seed, "mi_estimator": args.mi_estimator,
                                   "libraries": library_versions()}
        checkpoint.write_json(Path(args.checkpoints) / key / "metrics.json", results)
        print(format_table(spec, results), end="\n\n")


if __name__ == "__main__":
    main()
