"""PLANET (arXiv 2603.08491): physical signature mining + consistency contrastive learning.

Physical signature mining (pure, batched, no parameters) on satellite images in [0, 1]:

- ``f_color``: per-channel colour histograms, `color_bins` (16) equal bins per channel,
  each channel's histogram sums to 1 -> 3 * 16 = 48 values. 16 bins (steps of 16 grey levels)
  separate roof, vegetation, water and asphalt colours without splitting one material over many
  bins because of shading and sensor noise.
- ``f_struc``: polar histogram of gradient orientations weighted by gradient magnitude,
  `orientation_bins` (18) over 0-180 deg (10 deg steps, HOG's classic choice; orientation is
  taken modulo 180 because a dark-to-light and a light-to-dark edge have the same direction).
  Sobel on the luminance, valid convolution (no border artefacts). The angle is that of the
  gradient, atan2(g_y, g_x) with x to the right and y downwards: bin 0 is centred on 0 deg (the
  gradient of vertical edges, e.g. vertical stripes) and bin 9 on 90 deg (horizontal edges).
  Votes are split linearly between the two nearest bin centres (circularly), so a small
  rotation moves mass smoothly. Sums to 1 (all zeros for a flat image).
- ``f_tex``: 1-D texture spectrum: the radially averaged power spectrum of the mean-removed,
  Hann-windowed luminance, averaged in `texture_rings` (16) rings with log-spaced radii from
  one cycle per image to the corner of the spectrum (sqrt(0.5) cycles/pixel). Log spacing
  because natural-image spectra fall as a power law: equal log steps give each octave the same
  number of values. Log-normalised: log(share of the summed ring power + 1e-5) minus its mean
  over rings, i.e. the shape of the spectrum, independent of overall contrast; the relative
  eps bounds the range for near-empty rings (and rings with no sample on tiny images).

Consistency contrastive learning: L_phy = L_color + L_struc + L_tex, each an InfoNCE (positives
on the diagonal, `geobridge.losses.info_nce`) between the text descriptor t_k and the projected
signature proj(f_k); the objective is L_itc + lambda * L_phy.

How it fits the EdgeSet design (`geobridge.losses.edges`): `planet_edge_set(lambda_phy)` is an
ordinary `EdgeSet` with a text-satellite edge ``"t-s"`` in group ``"itc"`` and three edges between
string keys ``"text:color"``/``"satellite:color"`` (and struc, tex) in group ``"physical"`` whose
group weight is ``3 * lambda_phy`` (EdgeSet averages a group; PLANET sums the three terms). All
edges share the model's logit scale. `PlanetObjective` computes the embeddings dict for that set
from a batch, so any training loop can call it:

    objective = PlanetObjective(model, head, lambda_phy=0.1)
    out = objective({View.SATELLITE: pixels, View.TEXT: texts})   # LossOutput
    out.total.backward(); out.terms["itc"], out.terms["color"], out.terms["phy"]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from geobridge.losses.edges import Edge, EdgeSet, LossOutput
from geobridge.models.physical import DESCRIPTORS, PhysicalHead, PhysicalHeadConfig
from geobridge.views import View

#: Luminance weights (ITU-R BT.601), as in PIL's "L" conversion.
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- signatures
@dataclass(frozen=True)
class SignatureConfig:
    """Bin counts of the three physical signatures (see the module docstring for the choices)."""

    color_bins: int = 16
    orientation_bins: int = 18
    texture_rings: int = 16

    def __post_init__(self) -> None:
        for name in ("color_bins", "orientation_bins", "texture_rings"):
            if int(getattr(self, name)) < 2:
                raise ValueError(f"{name} must be at least 2; got {getattr(self, name)}")

    @property
    def dims(self) -> dict[str, int]:
        """Length of each signature vector, keyed like `DESCRIPTORS`."""
        return {"color": 3 * self.color_bins, "struc": self.orientation_bins, "tex": self.texture_rings}


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"physical signatures need images (B, 3, H, W) in [0, 1]; got {shape}")
    if images.shape[2] < 3 or images.shape[3] < 3:
        raise ValueError(f"images must be at least 3x3 pixels; got {images.shape[2]}x{images.shape[3]}")
    return images.float()


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, H, W) grey."""
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1)


def colour_histogram(images: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """Per-channel histograms of (B, 3, H, W) images in [0, 1] -> (B, 3 * bins): R bins, then
    G, then B; each channel's block sums to 1. Values outside [0, 1] fall in the end bins."""
    images = _check_images(images)
    batch = images.shape[0]
    index = (images.clamp(0, 1) * bins).long().clamp_(max=bins - 1).flatten(2)  # (B, 3, HW)
    counts = torch.zeros(batch, 3, bins, dtype=images.dtype, device=images.device)
    counts.scatter_add_(2, index, torch.ones_like(index, dtype=images.dtype))
    return (counts / index.shape[2]).flatten(1)


def orientation_histogram(images: torch.Tensor, bins: int = 18) -> torch.Tensor:
    """Magnitude-weighted histogram of Sobel gradient orientations modulo 180 deg -> (B, bins),
    bin i centred on i * 180 / bins degrees, linear vote splitting, sums to 1 (0 if flat)."""
    grey = luminance(_check_images(images)).unsqueeze(1)
    sobel_x = torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=grey.dtype, device=grey.device
    )
    kernels = torch.stack([sobel_x, sobel_x.t()]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy (y down)
    with torch.autocast(grey.device.type, enabled=False):  # a descriptor: full precision under AMP
        gradient = F.conv2d(grey, kernels)  # valid: no padding artefacts at the border
    gx, gy = gradient[:, 0].flatten(1), gradient[:, 1].flatten(1)
    magnitude = torch.sqrt(gx * gx + gy * gy)
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)  # [0, pi)
    position = angle / (math.pi / bins)  # in bin-centre units
    lower = torch.floor(position)
    upper_weight = position - lower
    lower_index = lower.long() % bins
    upper_index = (lower_index + 1) % bins
    histogram = torch.zeros(grey.shape[0], bins, dtype=grey.dtype, device=grey.device)
    histogram.scatter_add_(1, lower_index, magnitude * (1 - upper_weight))
    histogram.scatter_add_(1, upper_index, magnitude * upper_weight)
    total = histogram.sum(1, keepdim=True)
    return torch.where(total > 1e-8, histogram / total.clamp_min(1e-8), torch.zeros_like(histogram))


def texture_ring_edges(height: int, width: int, rings: int = 16) -> torch.Tensor:
    """Log-spaced ring radii (rings + 1,) in cycles per pixel, from one cycle per image to the
    spectrum's corner (sqrt(0.5)); the last edge is nudged up so the corner falls inside."""
    low = 1.0 / max(height, width)
    high = math.sqrt(0.5) * (1 + 1e-6)
    return torch.logspace(math.log10(low), math.log10(high), rings + 1, dtype=torch.float64)


def ring_power(images: torch.Tensor, rings: int = 16) -> torch.Tensor:
    """Mean power of the mean-removed, Hann-windowed luminance in each log-spaced ring ->
    (B, rings); 0 for a ring that holds no frequency sample. The DC term is excluded."""
    grey = luminance(_check_images(images)).double()
    height, width = grey.shape[-2:]
    grey = grey - grey.mean(dim=(-2, -1), keepdim=True)
    window = torch.outer(
        torch.hann_window(height, periodic=False, dtype=grey.dtype, device=grey.device),
        torch.hann_window(width, periodic=False, dtype=grey.dtype, device=grey.device),
    )
    power = torch.fft.fft2(grey * window).abs().pow(2).flatten(1)  # (B, H*W)
    fy = torch.fft.fftfreq(height, dtype=grey.dtype, device=grey.device)
    fx = torch.fft.fftfreq(width, dtype=grey.dtype, device=grey.device)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).flatten()
    edges = texture_ring_edges(height, width, rings).to(grey.device)
    ring = torch.bucketize(radius, edges, right=True) - 1  # ring index; -1 below the first edge (DC)
    inside = (ring >= 0) & (ring < rings)
    index = ring.clamp(0, rings - 1)
    sums = torch.zeros(grey.shape[0], rings, dtype=grey.dtype, device=grey.device)
    sums.index_add_(1, index[inside], power[:, inside])
    counts = torch.zeros(rings, dtype=grey.dtype, device=grey.device).index_add_(
        0, index[inside], torch.ones_like(radius[inside])
    )
    return (sums / counts.clamp_min(1)).to(images.dtype if images.is_floating_point() else torch.float32)


def texture_spectrum(images: torch.Tensor, rings: int = 16, eps: float = 1e-5) -> torch.Tensor:
    """Log-normalised 1-D texture spectrum -> (B, rings): each ring's share of the summed ring
    power, log(share + eps), minus its mean over rings. Dividing by the sum first makes it
    contrast-invariant (eps is relative); eps bounds the range for near-empty rings. A flat
    image gives all zeros."""
    power = ring_power(images, rings).double()
    share = power / power.sum(dim=1, keepdim=True).clamp_min(1e-30)
    log_share = torch.log(share + eps)
    return (log_share - log_share.mean(dim=1, keepdim=True)).float()


def physical_signatures(
    images: torch.Tensor, config: SignatureConfig = SignatureConfig()
) -> dict[str, torch.Tensor]:
    """All three signatures of (B, 3, H, W) images in [0, 1]: {"color", "struc", "tex"}."""
    return {
        "color": colour_histogram(images, config.color_bins),
        "struc": orientation_histogram(images, config.orientation_bins),
        "tex": texture_spectrum(images, config.texture_rings),
    }


def denormalise(
    pixels: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> torch.Tensor:
    """Undo the tower's Normalize: model-ready pixels -> [0, 1] images (clamped)."""
    m = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels * s + m).clamp(0, 1)


# --------------------------------------------------------------------------- loss
def physical_key(side: str, descriptor: str) -> str:
    """Embedding-dict key of a physical descriptor, e.g. ("text", "color") -> "text:color"."""
    return f"{side}:{descriptor}"


def planet_edge_set(
    lambda_phy: float, *, symmetric: bool = True, label_smoothing: float = 0.0, gather: bool = False
) -> EdgeSet:
    """The PLANET loss as an EdgeSet: itc = InfoNCE(text, satellite); physical group = mean of
    the three descriptor edges with weight 3 * lambda_phy, so total = L_itc + lambda * L_phy."""
    if lambda_phy < 0:
        raise ValueError(f"lambda_phy must be >= 0; got {lambda_phy}")
    edges = [Edge(View.TEXT, View.SATELLITE, group="itc", name="t-s")]
    edges += [
        Edge(physical_key("text", d), physical_key("satellite", d), group="physical", name=d)
        for d in DESCRIPTORS
    ]
    return EdgeSet(
        edges=tuple(edges),
        group_weights={"physical": len(DESCRIPTORS) * float(lambda_phy)},
        symmetric=symmetric,
        label_smoothing=label_smoothing,
        gather=gather,
    )


class PlanetConfig(BaseModel):
    """The ``physical:`` section of configs/planet.yaml (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    lambda_phy: float = Field(0.1, ge=0)
    dim: int = Field(128, gt=0)  # D_phy
    attention_dim: int = Field(128, gt=0)
    heads: int = Field(4, gt=0)
    hidden: int = Field(256, gt=0)
    color_bins: int = Field(16, ge=2)
    orientation_bins: int = Field(18, ge=2)
    texture_rings: int = Field(16, ge=2)

    @property
    def signatures(self) -> SignatureConfig:
        return SignatureConfig(self.color_bins, self.orientation_bins, self.texture_rings)

    def head_config(self, token_width: int) -> PhysicalHeadConfig:
        return PhysicalHeadConfig(
            token_width=token_width,
            signature_dims=self.signatures.dims,
            dim=self.dim,
            attention_dim=self.attention_dim,
            heads=self.heads,
            hidden=self.hidden,
        )


class PlanetObjective:
    """L_itc + lambda * (L_color + L_struc + L_tex) for a batch {View.SATELLITE: pixels (B,3,H,W)
    normalised for the satellite tower, View.TEXT: list[str], optional "mask": {View: (B,) bool}}.

    Returns a `LossOutput` whose terms are "itc", "color", "struc", "tex", "phy" (sum of the
    three) and "total". Signatures are mined from the de-normalised pixels without gradient.

    L_phy shapes the retrieval embedding only through the text tower's trainable layers (the
    image side of L_phy is a fixed signature): with an entirely frozen text tower, lambda only
    trains the physical head and leaves retrieval unchanged. Train at least the last text block.
    """

    def __init__(
        self,
        model: Any,
        physical_head: PhysicalHead,
        lambda_phy: float = 0.1,
        signatures: SignatureConfig = SignatureConfig(),
        *,
        symmetric: bool = True,
        label_smoothing: float = 0.0,
        gather: bool = False,
    ) -> None:
        if physical_head.config.signature_dims != signatures.dims:
            raise ValueError(
                f"physical head expects signature sizes {physical_head.config.signature_dims}, "
                f"but the signature config gives {signatures.dims}"
            )
        self.model = model
        self.physical_head = physical_head
        self.lambda_phy = float(lambda_phy)
        self.signatures = signatures
        self.edges = planet_edge_set(
            lambda_phy, symmetric=symmetric, label_smoothing=label_smoothing, gather=gather
        )

    def parameters(self) -> list[torch.nn.Parameter]:
        """Everything the objective trains: the model's and the physical head's parameters."""
        return list(self.model.parameters()) + list(self.physical_head.parameters())

    def embeddings(self, batch: Mapping[Any, Any], text_features: Any = None) -> dict[Any, torch.Tensor]:
        """The embeddings dict the PLANET edge set consumes. `text_features`: an optional cached
        `TokenOutput` of a frozen text tower for these texts (skips the text tower)."""
        pixels = batch[View.SATELLITE]
        if text_features is None:
            text = self.model.encode_text_tokens(batch[View.TEXT])
        else:
            text = self.model.text_tokens_from_tower_output(text_features)
        tower = self.model.tower(View.SATELLITE).config
        with torch.no_grad():
            mined = physical_signatures(denormalise(pixels, tower.mean, tower.std), self.signatures)
        t = self.physical_head.project_text(text.tokens, text.attention_mask)
        f = self.physical_head.project_signatures(mined)
        out: dict[Any, torch.Tensor] = {
            View.TEXT: text.embedding,
            View.SATELLITE: self.model.encode(View.SATELLITE, pixels),
        }
        for name in DESCRIPTORS:
            out[physical_key("text", name)] = t[name]
            out[physical_key("satellite", name)] = f[name]
        return out

    def loss(
        self, embeddings: Mapping[Any, torch.Tensor], masks: Mapping[Any, torch.Tensor] | None = None
    ) -> LossOutput:
        """The PLANET loss of an embeddings dict (see `embeddings`); masks keyed by View apply to
        that view's physical descriptors too."""
        full_masks = None
        if masks:
            full_masks = dict(masks)
            for side, view in (("text", View.TEXT), ("satellite", View.SATELLITE)):
                if view in masks:
                    full_masks.update({physical_key(side, d): masks[view] for d in DESCRIPTORS})
        out = self.edges(embeddings, self.model.logit_scale_value(), full_masks)
        zero = out.total * 0.0
        terms = {"itc": out.terms.get("t-s", zero)}
        terms.update({d: out.terms.get(d, zero) for d in DESCRIPTORS})
        terms["phy"] = sum((terms[d] for d in DESCRIPTORS), zero)
        terms["total"] = out.total
        return LossOutput(total=out.total, terms=terms, counts=out.counts, skipped=out.skipped)

    def __call__(self, batch: Mapping[Any, Any], text_features: Any = None) -> LossOutput:
        masks = batch.get("mask") if isinstance(batch, Mapping) else None
        return self.loss(self.embeddings(batch, text_features), masks)


def build_planet_objective(model: Any, config: PlanetConfig, **options: Any) -> PlanetObjective:
    """A fresh physical head sized for `model`'s text tower, wrapped in the objective."""
    head = PhysicalHead(config.head_config(model.text_token_width)).to(model.device)
    return PlanetObjective(model, head, config.lambda_phy, config.signatures, **options)
