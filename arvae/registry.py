"""The dataset registry: every dataset is described once, here.

``train.py``, ``arvae.evaluate`` and ``app.py`` iterate :data:`DATASETS`. Adding a dataset means
adding one :class:`DatasetSpec` below and one data module under ``arvae/data``.
Hyperparameters are the paper's (Sect. 4.3 and Appendix B).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from arvae import models
from arvae.data import bach, folk, mnist, sprites
from arvae.data.base import AttributeDataset
from arvae.morphometrics import measure_decoded as measure_morphometrics
from arvae.music.attributes import measure as measure_music_attributes

MODEL_KINDS = ("arvae", "beta-vae")


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    display_name: str
    domain: str  # "image" or "music"
    load_split: Callable[..., AttributeDataset]  # (split, data_dir=None, max_items=None)
    attribute_names: tuple[str, ...]
    regularized_dims: tuple[int, ...]  # latent dim of each attribute (AR-VAE)
    model_class: type
    model_kwargs: dict = field(default_factory=dict)
    # measures attributes of decoded outputs: images (N, H, W) in [0, 1] or tokens (N, 24) -> (N, L);
    # for MNIST the batched morphometrics.measure_fast (the training data keeps the reference measure)
    measure: Callable[[np.ndarray], np.ndarray] = None
    beta: float = 4.0
    gamma: float = 10.0  # AR-VAE only; the beta-VAE baseline uses gamma = 0
    delta: float = 1.0
    lr: float = 1e-4
    batch_size: int = 128
    epochs: int = 100
    # the paper's medians over 10 seeds, read off its Figs. 3, 5 and 7: metric -> (AR-VAE, beta-VAE)
    paper_medians: dict = field(default_factory=dict)

    def gamma_for(self, model_kind: str) -> float:
        if model_kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {model_kind!r}; expected one of {MODEL_KINDS}")
        return self.gamma if model_kind == "arvae" else 0.0


DATASETS: dict[str, DatasetSpec] = {
    spec.key: spec
    for spec in (
        DatasetSpec(
            key="sprites",
            display_name="2-d Sprites",
            domain="image",
            load_split=sprites.load_split,
            attribute_names=sprites.ATTRIBUTE_NAMES,
            regularized_dims=(0, 1, 2, 3, 4),
            model_class=models.SpritesVAE,
            model_kwargs={"latent_dim": 10},
            measure=sprites.measure,
            beta=4.0, gamma=10.0, delta=1.0, batch_size=128, epochs=100,
            paper_medians={"interpretability": (0.85, 0.45), "mig": (0.69, 0.33), "sap": (0.85, 0.40), "scc": (0.89, 0.615), "modularity": (0.96, 0.91), "reconstruction_accuracy": (0.9985, 0.997)},
        ),
        DatasetSpec(
            key="mnist",
            display_name="Morpho-MNIST",
            domain="image",
            load_split=mnist.load_split,
            attribute_names=mnist.ATTRIBUTE_NAMES,
            regularized_dims=(0, 1, 2, 3, 4, 5),
            model_class=models.MnistVAE,
            model_kwargs={"latent_dim": 16},
            measure=measure_morphometrics,
            beta=4.0, gamma=10.0, delta=1.0, batch_size=128, epochs=100,
            paper_medians={"interpretability": (0.85, 0.41), "mig": (0.135, 0.03), "sap": (0.545, 0.28), "scc": (0.96, 0.625), "modularity": (0.84, 0.85), "reconstruction_accuracy": (0.970, 0.942),
                           "content_preservation_reconstructions": (0.927, 0.83), "content_preservation_traversals": (0.80, 0.50)},
        ),
        DatasetSpec(
            key="bach",
            display_name="Bach Chorales",
            domain="music",
            load_split=bach.load_split,
            attribute_names=bach.ATTRIBUTE_NAMES,
            regularized_dims=(0, 1, 2, 3),
            model_class=models.MeasureVAE,
            model_kwargs={"latent_dim": 32, "vocab_size": bach.VOCAB_SIZE},
            measure=measure_music_attributes,
            beta=0.001, gamma=1.0, delta=10.0, batch_size=256, epochs=100,
            paper_medians={"interpretability": (0.96, 0.08), "mig": (0.165, 0.03), "sap": (0.32, 0.07), "scc": (0.975, 0.345), "modularity": (0.69, 0.71), "reconstruction_accuracy": (0.962, 0.991)},
        ),
        DatasetSpec(
            key="folk",
            display_name="Folk Music",
            domain="music",
            load_split=folk.load_split,
            attribute_names=folk.ATTRIBUTE_NAMES,
            regularized_dims=(0, 1, 2, 3),
            model_class=models.MeasureVAE,
            model_kwargs={"latent_dim": 32, "vocab_size": folk.VOCAB_SIZE},
            measure=measure_music_attributes,
            beta=0.001, gamma=1.0, delta=10.0, batch_size=256, epochs=30,
            paper_medians={"interpretability": (0.96, 0.22), "mig": (0.48, 0.025), "sap": (0.525, 0.10), "scc": (0.99, 0.44), "modularity": (0.87, 0.87), "reconstruction_accuracy": (0.995, 0.9975)},
        ),
    )
}


def get(key: str) -> DatasetSpec:
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {key!r}; expected one of {tuple(DATASETS)}")
    return DATASETS[key]
