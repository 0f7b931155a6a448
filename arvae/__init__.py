"""AR-VAE: attribute-regularized VAEs (Pati & Lerch) for images and music."""
