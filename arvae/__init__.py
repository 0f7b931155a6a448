"""AR-VAE: attribute-regularized VAEs (Pati & Lerch) for images and music."""

PROJECT_URL = "https://huggingface.co/spaces/arvae/ar-vae-explorer"  # this project: the app and its code
PAPER_URL = "https://arxiv.org/abs/2004.05485"
LICENSE = "mit"  # as the Space's front matter (README.md)
