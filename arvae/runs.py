"""Summarize training runs from their run folders: the table of a recipe experiment.

    python -m arvae.runs RUN_MODEL_DIR [RUN_MODEL_DIR ...] [--every 500]

Each ``RUN_MODEL_DIR`` is a ``<run-dir>/<dataset>/<model>/`` folder written by ``train.py``. Its
training state holds the validation probe of every ``--eval-every`` step (the Spearman correlation
of each regularized dim's posterior mean with its attribute, on the validation split) and its
metadata the configuration; this prints one markdown row per probe.
"""
from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

from arvae import checkpoint, hub


def model_options(config: dict, model_class: type) -> list[str]:
    """The ``config.json`` entries that differ from ``model_class``'s defaults, named for a table:
    a switched-on flag by its name (``batch norm``), any other value after it (``decoder channels 64``)."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(model_class).parameters.items()}
    return [name.replace("_", " ") + ("" if value is True else f" {value}")
            for name, value in config.items() if name in defaults and value != defaults[name]]


def recipe(metadata: dict, options: list[str] = ()) -> str:
    """The hyperparameters a run was trained with, and the model options it changed from the
    class's defaults (``options``, from ``model_options``), in one cell."""
    hp = metadata.get("hyperparameters", {})
    gamma, delta = (("/".join(f"{v:g}" for v in value) if isinstance(value, list) else f"{value:g}")
                    for value in (hp.get("gamma"), hp.get("delta", 1.0)))
    extras = [f"δ {delta}"] if metadata.get("model") == "arvae" else []
    if any(hp.get("warmup", [0, 0])):
        extras.append("no reconstruction for {:,} steps, ramp over {:,}".format(*hp["warmup"]))
    if hp.get("free_bits"):
        extras.append(f"free bits {hp['free_bits']:g}")
    if hp.get("lr_schedule", "constant") != "constant":
        extras.append(f"{hp['lr_schedule']} lr")
    if metadata.get("selected"):
        extras.append(f"best validation probe (step {metadata['selected']['step']:,})")
    extras += options
    return ", ".join([f"{metadata.get('model')} lr {hp.get('lr'):g}, β {hp.get('beta'):g}, γ {gamma}", *extras,
                      metadata.get("precision", "fp32"), f"{metadata['data']['train_items']:,} items"])


def summary_rows(run_model_dir, every: int = 0) -> list[dict]:
    """One row per logged probe of a run (every ``every`` steps only, when given, plus the last)."""
    directory = Path(run_model_dir)
    state = checkpoint.read_training_state(directory)
    if state is None:
        raise FileNotFoundError(f"no training state in {directory}: not a run folder of train.py")
    metadata = checkpoint.read_metadata(directory)
    config_path = directory / "config.json"
    options = []
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        options = model_options(config, hub.model_class(config, directory))
    run, run_recipe = f"{directory.parent.parent.name}/{directory.name}", recipe(metadata, options)
    history = [entry for entry in state["history"] if "spearman" in entry]
    rows = []
    for index, entry in enumerate(history):
        if every and entry["step"] % every and index != len(history) - 1:
            continue
        rows.append({"run": run, "recipe": run_recipe, "step": entry["step"],
                     "wall_time_s": entry.get("wall_time_s"),
                     "spearman": {name: entry["spearman"][name] for name in metadata["attribute_names"]},
                     "accuracy": entry["val"].get("accuracy")})
    return rows


def markdown(rows: list[dict]) -> str:
    """Two tables: each run's recipe, then its probes (one row per probe)."""
    names = list(rows[0]["spearman"]) if rows else []
    recipes = dict.fromkeys((row["run"], row["recipe"]) for row in rows)
    lines = ["| run | recipe |", "| --- | --- |", *(f"| {run} | {recipe} |" for run, recipe in recipes), "",
             "| run | step | wall time | recon. acc. | " + " | ".join(f"ρ {n}" for n in names) + " |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for row in rows:
        wall = f"{row['wall_time_s'] / 60:.0f} min" if row["wall_time_s"] is not None else "–"
        lines.append(f"| {row['run']} | {row['step']:,} | {wall} | {row['accuracy']:.4f} | "
                     + " | ".join(f"{row['spearman'][n]:.2f}" for n in names) + " |")
    return "\n".join(lines)


def tables(rows: list[dict]) -> str:
    """``markdown`` of the rows, one pair of tables per set of probed attributes (runs of
    different datasets probe different attributes)."""
    by_attributes: dict[tuple, list[dict]] = {}
    for row in rows:
        by_attributes.setdefault(tuple(row["spearman"]), []).append(row)
    return "\n\n".join(markdown(group) for group in by_attributes.values())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_model_dirs", nargs="+", help="<run-dir>/<dataset>/<model> folders")
    parser.add_argument("--every", type=int, default=0, help="only probes at multiples of this step (and the last)")
    args = parser.parse_args(argv)
    try:
        rows = [row for directory in args.run_model_dirs for row in summary_rows(directory, args.every)]
    except FileNotFoundError as error:
        parser.error(str(error))
    print(tables(rows))


if __name__ == "__main__":
    main()
