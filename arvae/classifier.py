"""A digit classifier for the content-preservation experiment (Sect. 5.3).

    python -m arvae.classifier --data-dir /path/to/mnist-idx  # trains, saves, prints held-out accuracy

It scores real held-out digits, their reconstructions, and their attribute traversals: if a
traversal keeps the digit's identity, the classifier still recognizes it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from arvae import checkpoint, traversal
from arvae.models import SafetensorsHubMixin

CLASSIFIER_DIR = ("mnist", "classifier")
TRAVERSAL_STEPS = 10
TRAVERSAL_DIGITS = 1000  # digits whose 60 traversal images are scored (the paper used all 10k)


class DigitClassifier(nn.Module, SafetensorsHubMixin, library_name="arvae"):
    """A small CNN (two conv blocks, one hidden layer) over 28 x 28 digits in [0, 1]."""

    def __init__(self, channels: int = 32, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU(),
            nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * channels * 49, hidden), nn.ReLU(),
                                  nn.Dropout(0.3), nn.Linear(hidden, 10))

    def forward(self, images):
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images, batch_size: int = 1024) -> np.ndarray:
        """Digit predictions for float images ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` in [0, 1]."""
        self.eval()
        images = torch.as_tensor(np.asarray(images), dtype=torch.float32).reshape(-1, 1, 28, 28)
        return torch.cat([self(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)]).numpy()


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random affine jitter (rotation, scale, shift) so 5k digits suffice."""
    n = len(images)
    angle = (torch.rand(n, generator=generator) - 0.5) * 0.4
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.2
    theta = torch.stack([torch.stack([scale * angle.cos(), -scale * angle.sin(), shift[:, 0]], 1),
                         torch.stack([scale * angle.sin(), scale * angle.cos(), shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def train_classifier(train_images, train_labels, epochs: int = 30, seed: int = 0) -> DigitClassifier:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images = train_images.float().div(255).reshape(-1, 1, 28, 28)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=epochs * ((len(images) + 127) // 128))
    model.train()
    for _ in tqdm(range(epochs), desc="digit classifier"):
        for batch in torch.randperm(len(images), generator=generator).split(128):
            loss = F.cross_entropy(model(augment(images[batch], generator)), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def load_classifier(root="checkpoints") -> DigitClassifier:
    directory = Path(root).joinpath(*CLASSIFIER_DIR)
    if not (directory / "model.safetensors").exists():
        raise FileNotFoundError(f"no digit classifier in {directory}; train it: python -m arvae.classifier")
    return DigitClassifier.from_pretrained(directory)


def content_preservation(model, data, dims, root="checkpoints") -> dict:
    """Classifier accuracy on held-out digits, their reconstructions and their traversals; also
    ``traversals_per_dim``, the traversal accuracy of each of ``dims`` (shows which attribute's
    traversal changes the digit most; the paper reports only the mean)."""
    classifier = load_classifier(root)
    labels = data.labels.numpy()
    latents = traversal.encode(model, data.inputs)
    reconstructions = traversal.decode(model, latents)
    values = traversal.traversal_values(TRAVERSAL_STEPS)
    subset = latents[:TRAVERSAL_DIGITS]
    traversals = torch.cat([traversal.traversal_latents(subset, d, values) for d in dims], dim=1)  # (n, L*steps, D)
    decoded = traversal.decode(model, traversals.reshape(-1, latents.shape[1]))
    kept = classifier.predict(decoded).reshape(len(subset), len(dims), TRAVERSAL_STEPS) == labels[:len(subset), None, None]
    return {
        "inputs": float((classifier.predict(data.inputs.float() / 255) == labels).mean()),
        "reconstructions": float((classifier.predict(reconstructions) == labels).mean()),
        "traversals": float(kept.mean()),
        "traversals_per_dim": kept.mean(axis=(0, 2)).tolist(),
    }


def main(argv=None) -> None:
    from arvae.data import mnist

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="MNIST IDX folder (default: download or $ARVAE_MNIST_DIR)")
    parser.add_argument("--output-dir", default="checkpoints")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_set = mnist.load_split("train", data_dir=args.data_dir)
    test_set = mnist.load_split("test", data_dir=args.data_dir)
    classifier = train_classifier(train_set.inputs, train_set.labels, args.epochs, args.seed)
    accuracy = float((classifier.predict(test_set.inputs.float() / 255) == test_set.labels.numpy()).mean())
    directory = Path(args.output_dir).joinpath(*CLASSIFIER_DIR)
    checkpoint.save_model(classifier, directory, {
        "task": "MNIST digit classification for content preservation", "data": train_set.source,
        "train_items": len(train_set), "epochs": args.epochs, "seed": args.seed,
        "held_out_accuracy": accuracy, "held_out_items": len(test_set), "held_out_source": test_set.source})
    print(f"digit classifier: {accuracy:.2%} on {len(test_set)} held-out test digits; saved {directory}")


if __name__ == "__main__":
    main()
