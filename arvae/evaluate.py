"""Evaluate trained AR-VAE and beta-VAE checkpoints on held-out data, as in the paper (Sect. 5).

    python -m arvae.evaluate --dataset all [--split test] [--num-samples N]

Writes ``<checkpoints>/<dataset>/metrics.json`` and prints a table. Metrics: Interpretability,
Modularity, MIG, SAP, SCC (per attribute and their mean), reconstruction accuracy, traversal
monotonicity (mean Spearman correlation between a traversed latent value and the attribute
measured on what was decoded), and, for MNIST, content preservation by a digit classifier.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from arvae import checkpoint, metrics, registry, traversal

MODEL_KINDS = registry.MODEL_KINDS
TABLE_METRICS = ("interpretability", "modularity", "mig", "sap", "scc", "reconstruction_accuracy",
                 "traversal_monotonicity")


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


def traversal_monotonicity(model, spec, latents: torch.Tensor, dims, steps: int = 9) -> dict:
    """Mean Spearman correlation between latent value and measured attribute along traversals."""
    values, measured = traversal.traverse_and_measure(model, spec.measure, latents, dims, steps)
    per_attribute = {name: float(metrics.spearman_rows(values, measured[l]).mean())
                     for l, name in enumerate(spec.attribute_names)}
    return {"mean": float(np.mean(list(per_attribute.values()))), "per_attribute": per_attribute}


def evaluate_model(spec, model_kind: str, data, root, mi_estimator: str, traversal_inputs: int = 100) -> dict:
    model, meta = checkpoint.load_trained(spec, model_kind, root)
    latents = traversal.encode(model, data.inputs)
    attributes = data.attributes.numpy().astype(np.float64)
    finite = np.isfinite(attributes).all(axis=1)  # e.g. blank digits have no morphometrics
    result = metrics.compute_all(latents.numpy()[finite], attributes[finite], list(spec.attribute_names),
                                 estimator=mi_estimator)
    dims = (list(spec.regularized_dims) if model_kind == "arvae" else
            metrics.attribute_dims_by_mutual_information(latents.numpy()[finite], attributes[finite],
                                                         estimator=mi_estimator))
    result["attribute_dims"] = {name: int(d) for name, d in zip(spec.attribute_names, dims)}
    result["reconstruction_accuracy"] = reconstruction_accuracy(model, data.inputs)
    monotonicity = traversal_monotonicity(model, spec, latents[:traversal_inputs], dims)
    result["traversal_monotonicity"] = monotonicity["mean"]
    for name, value in monotonicity["per_attribute"].items():
        result["per_attribute"][name]["traversal_monotonicity"] = value
    result["checkpoint"] = {k: meta.get(k) for k in ("steps", "epochs", "hardware", "seed", "wall_time_s")}
    if spec.content_classifier is not None:  # MNIST: a digit classifier (Sect. 5.3)
        result["content_preservation"] = spec.content_classifier(model, data, dims, root)
    return result


def format_table(spec, results: dict) -> str:
    header = f"{spec.display_name:<24}" + "".join(f"{kind:>12}" for kind in MODEL_KINDS)
    rows = [header, "-" * len(header)]
    for name in TABLE_METRICS:
        rows.append(f"{name:<24}" + "".join(
            f"{results[kind][name]:>12.3f}" if kind in results else f"{'-':>12}" for kind in MODEL_KINDS))
    return "\n".join(rows)


def markdown_report(root="checkpoints") -> str:
    """One markdown table of every dataset's metrics.json beside the paper's medians."""
    rows = ["| dataset | metric | AR-VAE | β-VAE | paper AR-VAE | paper β-VAE |", "| --- | --- | --- | --- | --- | --- |"]
    for spec in registry.DATASETS.values():
        path = Path(root) / spec.key / "metrics.json"
        if not path.exists():
            rows.append(f"| {spec.display_name} | not evaluated yet | | | | |")
            continue
        results = json.loads(path.read_text())
        for name in TABLE_METRICS:
            paper = spec.paper_medians.get(name)
            paper_cells = f"{paper[0]:.3f} | {paper[1]:.3f}" if paper else "– | –"
            rows.append(f"| {spec.display_name} | {name} | {results['arvae'][name]:.3f} | "
                        f"{results['beta-vae'][name]:.3f} | {paper_cells} |")
        for part in ("reconstructions", "traversals"):  # MNIST: digit classifier accuracy (Sect. 5.3)
            if "content_preservation" in results["arvae"]:
                paper = spec.paper_medians.get(f"content_preservation_{part}")
                paper_cells = f"{paper[0]:.3f} | {paper[1]:.3f}" if paper else "– | –"
                rows.append(f"| {spec.display_name} | content preservation ({part}) | "
                            f"{results['arvae']['content_preservation'][part]:.3f} | "
                            f"{results['beta-vae']['content_preservation'][part]:.3f} | {paper_cells} |")
    return "\n".join(rows)


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
                        help="only print the committed metrics of all datasets as a markdown table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_report(args.checkpoints))
        return
    keys = list(registry.DATASETS) if args.dataset == "all" else [args.dataset]
    for key in keys:
        spec = registry.get(key)
        torch.manual_seed(args.seed)
        data = held_out_sample(spec, args.split, args.num_samples or None, args.data_dir, args.seed)
        results = {kind: evaluate_model(spec, kind, data, args.checkpoints, args.mi_estimator)
                   for kind in MODEL_KINDS}
        results["evaluated_on"] = {"split": args.split, "num_samples": len(data), "source": data.source,
                                   "seed": args.seed, "mi_estimator": args.mi_estimator}
        checkpoint.write_json(Path(args.checkpoints) / key / "metrics.json", results)
        print(format_table(spec, results), end="\n\n")


if __name__ == "__main__":
    main()
