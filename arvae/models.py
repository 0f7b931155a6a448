"""The paper's VAEs (Appendix B): a model is its config plus safetensors weights.

``model.save_pretrained(dir)``, ``Model.from_pretrained(dir_or_repo)`` and ``model.push_to_hub(repo)``
come from huggingface_hub's ``PyTorchModelHubMixin``; loading is restricted to safetensors.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors.torch import load_model
from torch import nn

from arvae import LICENSE, PAPER_URL, PROJECT_URL
from arvae.music.tokens import canonicalize

HUB_TAGS = ["ar-vae", "vae", "disentanglement", "arxiv:2004.05485"]


class SafetensorsHubMixin(PyTorchModelHubMixin):
    """``PyTorchModelHubMixin`` that loads safetensors only (never a pickle fallback), strictly."""

    def save_pretrained(self, save_directory, *, config: dict | None = None, **kwargs):
        """As the mixin's, with the class name in ``config.json`` (``model_class``): so that
        :func:`arvae.hub.load` can load any saved model in one call."""
        config = {**(config or self._hub_mixin_config or {}), "model_class": type(self).__name__}
        return super().save_pretrained(save_directory, config=config, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only, token,
                         map_location="cpu", strict=True, **model_kwargs):
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, "model.safetensors")
        else:
            weights = hf_hub_download(repo_id=model_id, filename="model.safetensors", revision=revision,
                                      cache_dir=cache_dir, force_download=force_download, token=token,
                                      local_files_only=local_files_only)
        load_model(model, weights, strict=True, device=map_location)
        return model.eval()


class VAE(nn.Module, SafetensorsHubMixin, tags=HUB_TAGS, library_name="arvae",
          repo_url=PROJECT_URL, paper_url=PAPER_URL, license=LICENSE):
    """Shared VAE logic; subclasses define ``encode``, ``decode_logits`` and the data domain."""

    latent_dim: int
    memory_format = torch.contiguous_format  # the layout its weights train and run fastest in (CPU oneDNN)

    def forward(self, x: torch.Tensor):
        """Returns ``(logits, mu, logvar, z)``.

        Training samples z and may decode with teacher forcing; evaluation uses the posterior mean
        and decodes exactly as generation does.
        """
        mu, logvar = self.encode(x)
        if self.training:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            return self.decode_logits(z, x), mu, logvar, z
        return self.decode_logits(mu), mu, logvar, mu

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents into data space (image probabilities or greedy tokens)."""
        return self.logits_to_data(self.decode_logits(z))


def prepare_for_inference(model):
    """``model`` in eval mode, set up for fast CPU inference: image models get channels-last
    convolution weights (oneDNN's fast layout; decoding a batch of MNIST digits takes ~60 % of the
    time, outputs equal to ~1e-6). Returns the same object. Meant for models that are only run
    (the app's store, the benchmark): their conv weights are no longer contiguous, which
    ``save_pretrained`` handles but a plain ``safetensors.torch.save_file`` of the state dict does not."""
    return model.eval().to(memory_format=model.memory_format)


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same weights, same function) computed as one matrix product and a
    col2im (``F.fold``). For the single-channel output layers of the image decoders oneDNN's own
    kernel is slow: MNIST's last layer takes 71 ms per 1,024 digits in bf16 that way, 23 ms this way
    (``tests/test_models.py`` keeps it equal to ``F.conv_transpose2d``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.output_padding != (0, 0) or self.padding_mode != "zeros":
            raise ValueError("FoldConvTranspose2d supports groups=1, dilation=1, output_padding=0, zero padding")

    def forward(self, x, output_size=None):
        if output_size is not None:
            raise ValueError("FoldConvTranspose2d has no output_size: its output size follows from the input's")
        n, _, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        columns = x.permute(0, 2, 3, 1).reshape(n, height * width, -1) @ self.weight.reshape(self.in_channels, -1)
        columns = columns.float().transpose(1, 2)                       # (n, out * kh * kw, height * width)
        size = ((height - 1) * sh - 2 * ph + kh, (width - 1) * sw - 2 * pw + kw)
        out = F.fold(columns, size, (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return out + self.bias.float().view(1, -1, 1, 1) if self.bias is not None else out


class ImageVAE(VAE):
    """Bernoulli decoder over binary images; inputs are uint8 0-255 or float in [0, 1]."""

    domain = "image"
    memory_format = torch.channels_last

    @staticmethod
    def preprocess(inputs: torch.Tensor) -> torch.Tensor:
        return inputs.float() / 255.0 if inputs.dtype == torch.uint8 else inputs.float()

    @staticmethod
    def reconstruction_loss(logits, x):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)

    @staticmethod
    def reconstruction_accuracy(logits, x):
        return ((logits > 0) == (x > 0.5)).float().mean()

    @staticmethod
    def logits_to_data(logits):
        return torch.sigmoid(logits)

    def encode(self, x):
        hidden = self.encoder_linear(self.encoder_conv(x).flatten(1))
        return self.mu(hidden), self.logvar(hidden)

    def decode_logits(self, z, x=None):
        return self.decoder_conv(self.decoder_linear(z).view(-1, *self.feature_shape))


class SpritesVAE(ImageVAE):
    """2-d sprites VAE of Table 2: 4 stride-2 convs (32 ch), 3 linear layers, latent 10.

    ``batch_norm`` (not in the paper) puts a BatchNorm after every conv and deconv but the last.
    Without it this trunk learns dSprites' shape slowly: a supervised shape classifier on it
    reaches 76 % test accuracy after 1,000 steps (lr 1e-3, batch 128), with it 98 % after 600,
    and in the VAE the shape information never reaches the encoder before the KL has closed
    the shape dim (see the README's sprites experiments).

    ``decoder_channels`` (not in the paper; default ``channels``) widens the decoder's deconvs
    alone: a heart's notch is a few pixels that the 32-channel decoder drew in half of the hearts
    its code told apart (README experiment e16)."""

    def __init__(self, latent_dim: int = 10, channels: int = 32, hidden: int = 256, batch_norm: bool = False,
                 decoder_channels: int | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        decoder_channels = decoder_channels or channels
        self.feature_shape = (decoder_channels, 4, 4)

        def activated(layer, cout):
            return nn.Sequential(layer, *([nn.BatchNorm2d(cout)] if batch_norm else []), nn.ReLU())

        def conv(cin, cout):
            return activated(nn.Conv2d(cin, cout, 4, 2, 1), cout)

        def deconv(cin, cout, last=False):
            layer = (FoldConvTranspose2d if last else nn.ConvTranspose2d)(cin, cout, 4, 2, 1)
            return layer if last else activated(layer, cout)

        features = channels * 16
        self.encoder_conv = nn.Sequential(conv(1, channels), conv(channels, channels), conv(channels, channels),
                                          conv(channels, channels))
        self.encoder_linear = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder_linear = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                            nn.ReLU(), nn.Linear(hidden, decoder_channels * 16), nn.ReLU())
        self.decoder_conv = nn.Sequential(deconv(decoder_channels, decoder_channels),
                                          deconv(decoder_channels, decoder_channels),
                                          deconv(decoder_channels, decoder_channels),
                                          deconv(decoder_channels, 1, last=True))


class MnistVAE(ImageVAE):
    """Morpho-MNIST VAE of Table 2: 3 stride-1 convs with SELU + dropout, latent 16."""

    def __init__(self, latent_dim: int = 16, channels: int = 64, bottleneck_channels: int = 8,
                 hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.latent_dim = latent_dim
        self.feature_shape = (bottleneck_channels, 19, 19)  # 28 -> 25 -> 22 -> 19
        features = bottleneck_channels * 19 * 19  # 2888

        def block(layer):  # SELU in place: on channels-last bfloat16 maps the copy costs it ~40 %
            return nn.Sequential(layer, nn.SELU(inplace=True), nn.Dropout(dropout))

        self.encoder_conv = nn.Sequential(block(nn.Conv2d(1, channels, 4)), block(nn.Conv2d(channels, channels, 4)),
                                          block(nn.Conv2d(channels, bottleneck_channels, 4)))
        self.encoder_linear = nn.Sequential(nn.Linear(features, hidden), nn.SELU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder_linear = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SELU(), nn.Linear(hidden, features),
                                            nn.SELU())
        self.decoder_conv = nn.Sequential(block(nn.ConvTranspose2d(bottleneck_channels, channels, 4)),
                                          block(nn.ConvTranspose2d(channels, channels, 4)),
                                          FoldConvTranspose2d(channels, 1, 4))


class MeasureVAE(VAE):
    """MeasureVAE of Table 1: bi-GRU encoder over 24 tokens; beat-GRU -> tick-GRU decoder (4 x 6).

    Training decodes with teacher forcing (one GRU call over all 24 ticks, the tick hidden state
    carried across beats); generation decodes greedily, tick by tick.
    """

    domain = "music"

    def __init__(self, vocab_size: int = 32, latent_dim: int = 32, embedding_dim: int = 10, hidden: int = 128,
                 num_layers: int = 2, dropout: float = 0.5, beats: int = 4, ticks_per_beat: int = 6):
        super().__init__()
        self.latent_dim, self.vocab_size = latent_dim, vocab_size
        self.beats, self.ticks_per_beat, self.num_layers, self.hidden = beats, ticks_per_beat, num_layers, hidden
        encoder_features = 2 * num_layers * hidden  # final states of both directions and layers: 512
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder_rnn = nn.GRU(embedding_dim, hidden, num_layers, batch_first=True, dropout=dropout,
                                  bidirectional=True)
        self.mu = nn.Sequential(nn.Linear(encoder_features, encoder_features), nn.SELU(),
                                nn.Linear(encoder_features, latent_dim))
        self.logvar = nn.Sequential(nn.Linear(encoder_features, encoder_features), nn.SELU(),
                                    nn.Linear(encoder_features, latent_dim))
        self.z_to_beat_hidden = nn.Sequential(nn.Linear(latent_dim, num_layers * hidden), nn.SELU())
        self.z_to_tick_hidden = nn.Sequential(nn.Linear(latent_dim, num_layers * hidden), nn.SELU())
        self.beat_rnn = nn.GRU(1, hidden, num_layers, batch_first=True, dropout=dropout)
        self.tick_rnn = nn.GRU(embedding_dim + hidden, hidden, num_layers, batch_first=True, dropout=dropout)
        self.start_embedding = nn.Parameter(torch.zeros(embedding_dim))
        self.output = nn.Linear(hidden, vocab_size)

    @staticmethod
    def preprocess(inputs: torch.Tensor) -> torch.Tensor:
        return inputs.long()

    @staticmethod
    def reconstruction_loss(logits, x):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))

    @staticmethod
    def reconstruction_accuracy(logits, x):
        return (logits.argmax(-1) == x).float().mean()

    @staticmethod
    def logits_to_data(logits):
        return logits.argmax(-1)

    def encode(self, x):
        _, final = self.encoder_rnn(self.embedding(x))               # (2 * layers, B, H)
        features = final.transpose(0, 1).reshape(len(x), -1)
        return self.mu(features), self.logvar(features)

    def _initial_hidden(self, layer, z):
        return layer(z).view(len(z), self.num_layers, self.hidden).transpose(0, 1).contiguous()

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy tokens ``(B, 24)`` in canonical form (:func:`arvae.music.tokens.canonicalize`: a
        rest after a rest is a continuation), as the importers write measures and as MIDI and
        MusicXML hold them, so every decoded measure round-trips through its files. The four
        attributes count note onsets only, so they are the same for the raw greedy tokens."""
        greedy = super().generate(z)
        return torch.from_numpy(canonicalize(greedy.cpu().numpy())).to(greedy.device)

    def decode_logits(self, z, x=None):
        """Logits ``(B, 24, vocab)``: teacher-forced on tokens ``x`` when given, else greedy."""
        batch = len(z)
        beat_input = z.new_zeros(batch, self.beats, 1)
        beat_out, _ = self.beat_rnn(beat_input, self._initial_hidden(self.z_to_beat_hidden, z))
        beat_per_tick = beat_out.repeat_interleave(self.ticks_per_beat, dim=1)  # (B, 24, H)
        hidden = self._initial_hidden(self.z_to_tick_hidden, z)
        start = self.start_embedding.expand(batch, 1, -1)
        if x is not None:
            previous = torch.cat([start, self.embedding(x[:, :-1])], dim=1)
            out, _ = self.tick_rnn(torch.cat([previous, beat_per_tick], dim=-1), hidden)
            return self.output(out)
        logits, previous = [], start
        for tick in range(self.beats * self.ticks_per_beat):
            out, hidden = self.tick_rnn(torch.cat([previous, beat_per_tick[:, tick:tick + 1]], dim=-1), hidden)
            step_logits = self.output(out)
            logits.append(step_logits)
            previous = self.embedding(step_logits.argmax(-1))
        return torch.cat(logits, dim=1)
