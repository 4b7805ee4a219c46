"""PLANET's physical semantic projection: text tokens -> three physical descriptors.

Three learnable queries (colour, structure, texture) cross-attend (multi-head) over the text
tower's token states, ignoring padding; each attended vector goes through its own small MLP to
a `dim`-wide, L2-normalised descriptor t_color, t_struc, t_tex. On the image side, each mined
physical signature f_color, f_struc, f_tex (see `geobridge.losses.planet`) is mapped by its own
MLP into the same space. The consistency loss then pulls t_k towards proj(f_k) of the same
location (InfoNCE, positives on the diagonal).

    head = PhysicalHead(PhysicalHeadConfig(token_width=model.text_token_width,
                                           signature_dims={"color": 48, "struc": 18, "tex": 16}))
    t = head.project_text(tokens, attention_mask)     # {"color": (B, dim), "struc": ..., "tex": ...}
    f = head.project_signatures(signatures)           # same keys and shapes
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geobridge.atomic import atomic_directory

#: The physical descriptors, in query order.
DESCRIPTORS: tuple[str, ...] = ("color", "struc", "tex")

CONFIG_NAME = "physical_head.json"
WEIGHTS_NAME = "physical_head.safetensors"


@dataclass(frozen=True)
class PhysicalHeadConfig:
    """Sizes of the physical head.

    token_width: width of the text tower's token states (`model.text_token_width`).
    signature_dims: length of each image signature f_k (`SignatureConfig.dims`).
    dim: width D_phy of the physical space. attention_dim / heads: the cross-attention (queries
    live in attention_dim; keys and values are the tokens, mapped from token_width). hidden:
    hidden width of the per-descriptor MLPs.
    """

    token_width: int
    signature_dims: dict[str, int] = field(default_factory=lambda: {"color": 48, "struc": 18, "tex": 16})
    dim: int = 128
    attention_dim: int = 128
    heads: int = 4
    hidden: int = 256

    def __post_init__(self) -> None:
        if set(self.signature_dims) != set(DESCRIPTORS):
            raise ValueError(
                f"signature_dims needs exactly the keys {list(DESCRIPTORS)}; got {sorted(self.signature_dims)}"
            )
        for name, value in {
            "token_width": self.token_width,
            "dim": self.dim,
            "attention_dim": self.attention_dim,
            "heads": self.heads,
            "hidden": self.hidden,
            **self.signature_dims,
        }.items():
            if int(value) <= 0:
                raise ValueError(f"{name} must be a positive integer; got {value}")
        if self.attention_dim % self.heads:
            raise ValueError(
                f"attention_dim ({self.attention_dim}) must be divisible by heads ({self.heads})"
            )


def _mlp(width_in: int, hidden: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(width_in), nn.Linear(width_in, hidden), nn.GELU(), nn.Linear(hidden, width_out)
    )


class PhysicalSemanticProjection(nn.Module):
    """Learnable queries x multi-head cross-attention over text tokens -> one MLP per descriptor."""

    def __init__(self, config: PhysicalHeadConfig) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(len(DESCRIPTORS), config.attention_dim) * 0.02)
        self.token_norm = nn.LayerNorm(config.token_width)
        self.attention = nn.MultiheadAttention(
            config.attention_dim,
            config.heads,
            kdim=config.token_width,
            vdim=config.token_width,
            batch_first=True,
        )
        self.mlps = nn.ModuleDict(
            {name: _mlp(config.attention_dim, config.hidden, config.dim) for name in DESCRIPTORS}
        )

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """tokens (B, L, token_width), attention_mask (B, L) bool (True = real token) ->
        {"color", "struc", "tex"}: (B, dim) L2-normalised. Padding positions are never attended,
        so their values cannot change the result."""
        if tokens.ndim != 3 or attention_mask.shape != tokens.shape[:2]:
            raise ValueError(
                f"need tokens (B, L, W) and attention_mask (B, L); got {tuple(tokens.shape)} and {tuple(attention_mask.shape)}"
            )
        real = attention_mask.to(device=tokens.device, dtype=torch.bool)
        if not bool(real.any(dim=1).all()):
            raise ValueError(
                "every text needs at least one real token (an attention_mask row is all padding)"
            )
        keys = self.token_norm(tokens)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=~real, need_weights=False)
        return {
            name: F.normalize(self.mlps[name](attended[:, i]), dim=-1) for i, name in enumerate(DESCRIPTORS)
        }


class SignatureProjection(nn.Module):
    """One MLP per physical signature f_k -> the physical space (L2-normalised)."""

    def __init__(self, config: PhysicalHeadConfig) -> None:
        super().__init__()
        self.dims = dict(config.signature_dims)
        self.mlps = nn.ModuleDict(
            {name: _mlp(int(self.dims[name]), config.hidden, config.dim) for name in DESCRIPTORS}
        )

    def forward(self, signatures: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for name in DESCRIPTORS:
            if name not in signatures:
                raise ValueError(f"missing signature {name!r}; got {sorted(signatures)}")
            value = signatures[name]
            if value.ndim != 2 or value.shape[1] != self.dims[name]:
                raise ValueError(
                    f"signature {name!r} must be (B, {self.dims[name]}); got {tuple(value.shape)}"
                )
            out[name] = F.normalize(self.mlps[name](value), dim=-1)
        return out


class PhysicalHead(nn.Module):
    """The trainable PLANET parts that are not the retrieval model: text-side projection and
    image-signature projections. Kept outside `MultiViewModel` because retrieval never uses it."""

    def __init__(self, config: PhysicalHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.text = PhysicalSemanticProjection(config)
        self.signatures = SignatureProjection(config)

    def project_text(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """t_color, t_struc, t_tex from text token states."""
        return self.text(tokens, attention_mask)

    def project_signatures(self, signatures: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """proj(f_color), proj(f_struc), proj(f_tex) from mined image signatures."""
        return self.signatures(signatures)

    def save_pretrained(self, directory: str | Path) -> Path:
        """`physical_head.json` + `physical_head.safetensors`, written atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            (tmp / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                str(tmp / WEIGHTS_NAME),
            )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> PhysicalHead:
        from safetensors.torch import load_file

        directory = Path(directory)
        for needed in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / needed).is_file():
                raise FileNotFoundError(
                    f"{directory} is not a saved physical head: {needed} is missing (written by PhysicalHead.save_pretrained)"
                )
        head = cls(PhysicalHeadConfig(**json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))))
        head.load_state_dict(load_file(str(directory / WEIGHTS_NAME)), strict=True)
        return head
