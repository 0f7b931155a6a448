"""What the app explains to a visitor: each attribute's definition and unit, what each metric means,
how well the shipped model controls each attribute (read from ``metrics.json``) and the citation.
Plain text, no Gradio: the UI puts it beside the controls it explains."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from arvae import PAPER_URL

# attribute -> what is measured on a decoded output, in which unit
ATTRIBUTE_HELP = {
    "shape": "square 0, ellipse 1, heart 2 (a category, read from the picture's moments; none when "
             "the picture is none of the three, e.g. a round blob)",
    "scale": "size relative to the largest sprite: 0.5 to 1",
    "orientation": "rotation in radians, as far as the picture shows it: a square 0 to π/2, an ellipse "
                   "0 to π, a heart 0 to 2π (none for a blob)",
    "pos_x": "centre from left to right: 0 to 1 of the width",
    "pos_y": "centre from top to bottom: 0 to 1 of the height",
    "area": "ink area in pixels of the 28 × 28 image",
    "length": "length of the stroke's skeleton, in pixels",
    "thickness": "mean stroke width, in pixels",
    "slant": "lean in radians: positive leans right (/), negative left",
    "width": "width of the slant-aligned box around the ink, in pixels",
    "height": "height of that box, in pixels",
    "rhythmic_complexity": "onsets weighted by metrical position: 0 (few, on strong beats) to 1 (many, off-beat)",
    "pitch_range": "highest minus lowest note, in semitones / 26: 0 to 1",
    "note_density": "notes started, per 24 positions of the measure: 0 to 1",
    "contour": "last minus first note, in semitones / 26: negative falls, positive rises",
}

# metric -> one-line definition (paper, Sect. 4.1.1)
METRIC_HELP = {
    "Interpretability": "how well one latent dim alone predicts the attribute (0–1)",
    "Modularity": "whether each latent dim depends on one attribute only (0–1)",
    "MIG": "mutual information gap: the attribute's mutual information with its best dim minus the "
           "second best, normalized (0–1)",
    "SAP": "separated attribute predictability: the prediction score of the best dim minus the second best (0–1)",
    "SCC": "the largest Spearman rank correlation between the attribute and any latent dim (0–1)",
    "Reconstruction": "share of pixels (images) or tokens (music) decoded right from the encoded input",
    "Traversal monotonicity": "move the attribute's dim from −4 to 4, measure the decoded output, average "
                              "the Spearman correlation over 100 held-out inputs (1: always increases; "
                              "steps where the attribute is undefined, e.g. a blob's shape, are left out; "
                              "an angle is unwrapped, so a square turning past a quarter turn still turns on)",
    "Content preservation": "share of reconstructions (MNIST: also traversals) that keep the input's "
                            "content: the digit a classifier reads, or the sprite's shape",
}

CITATION = """@article{pati2020arvae,
  title   = {Attribute-based Regularization of Latent Spaces for Variational Auto-Encoders},
  author  = {Pati, Ashis and Lerch, Alexander},
  journal = {Neural Computing and Applications},
  year    = {2020},
  doi     = {10.1007/s00521-020-05270-2},
  eprint  = {2004.05485},
  archivePrefix = {arXiv}
}"""

CONTROLLED, PARTLY = 0.8, 0.4  # |traversal monotonicity| at or above: controls it; partly


def attribute_quality(root, key: str, kind: str) -> dict[str, tuple[str, str]]:
    """attribute -> (level, badge text) from the traversal monotonicity of ``<root>/<key>/metrics.json``:
    level ``"good"``, ``"partial"`` or ``"none"`` (the slider barely moves the attribute), or
    ``"unknown"`` when the model is not evaluated. Empty when the file is missing or unreadable."""
    path = Path(root) / key / "metrics.json"
    try:
        return _badges(path, path.stat().st_mtime_ns, kind)
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@functools.lru_cache(maxsize=32)
def _badges(path: Path, mtime_ns: int, kind: str) -> dict[str, tuple[str, str]]:
    """The badges of :func:`attribute_quality`, read once per version of the file."""
    per_attribute = json.loads(path.read_text())[kind]["per_attribute"]
    badges = {}
    for name, values in per_attribute.items():
        rho = values.get("traversal_monotonicity") if isinstance(values, dict) else None
        if not isinstance(rho, (int, float)):
            badges[name] = ("unknown", "not evaluated")
            continue
        strength = abs(rho)
        direction = "" if rho >= 0 else ", decreasing"
        if strength >= CONTROLLED:
            badges[name] = ("good", f"✓ controlled (traversal ρ = {rho:.2f}{direction})")
        elif strength >= PARTLY:
            badges[name] = ("partial", f"◐ partly controlled (traversal ρ = {rho:.2f}{direction})")
        else:
            badges[name] = ("none", f"✗ not controlled by this model (traversal ρ = {rho:.2f})")
    return badges


def metrics_help_markdown() -> str:
    """The metric definitions, the paper's link and its BibTeX, for the About tab."""
    rows = "\n".join(f"* **{name}**: {text}." for name, text in METRIC_HELP.items())
    return (f"### What the metrics mean\nAll are computed on the held-out test split and averaged over "
            f"the attributes (paper, Sect. 4.1.1); higher is better.\n\n{rows}\n\n"
            f"### Paper and citation\nAshis Pati and Alexander Lerch, *Attribute-based Regularization of Latent "
            f"Spaces for Variational Auto-Encoders*, Neural Computing and Applications, 2020. "
            f"[arXiv:2004.05485]({PAPER_URL})\n\n```bibtex\n{CITATION}\n```")
