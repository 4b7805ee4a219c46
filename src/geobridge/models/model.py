"""MultiViewModel: image towers per view (or shared), a text tower, one common embedding space.

`encode(view, inputs)` returns L2-normalised (N, D) embeddings. One learnable logit scale (log of
1/temperature, initialised to log(1/0.07), exp clamped at `logit_scale_max`) is shared by every
pair of views, as in CLIP and GeoBridge. Saved as `config.json` + `model.safetensors` (plus
tokenizer files some towers need under `assets/<tower>/`); never as a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geobridge.atomic import atomic_directory
from geobridge.models.config import ModelConfig
from geobridge.models.registry import build_tower
from geobridge.models.towers.base import TokenOutput, Tower, TowerLoadError
from geobridge.models.transforms import ViewTransform
from geobridge.views import View

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ASSETS_DIR = "assets"


@dataclass
class TextTokens:
    """A text batch encoded with its token states (see `MultiViewModel.encode_text_tokens`).

    embedding: (N, D) L2-normalised, the same as `encode_text`; tokens: (N, L, token_width)
    the text tower's last hidden states (before our projection); attention_mask: (N, L) bool,
    True on real tokens.
    """

    embedding: torch.Tensor
    tokens: torch.Tensor
    attention_mask: torch.Tensor


class MultiViewModel(nn.Module):
    """Towers keyed by name; views map onto towers (views sharing a name share parameters)."""

    def __init__(
        self, config: ModelConfig, *, load_weights: bool = True, assets_dir: Path | None = None
    ) -> None:
        """Build every tower. `load_weights=False` (used by `from_pretrained`) builds the
        architecture only, from the resolved config and the saved assets, with no download."""
        super().__init__()
        towers: dict[str, Tower] = {}
        for name, tower_config in config.towers.items():
            assets = assets_dir / name if assets_dir is not None and (assets_dir / name).is_dir() else None
            try:
                towers[name] = build_tower(tower_config, load_weights=load_weights, assets=assets)
            except TowerLoadError as err:  # name the tower in the advice (towers.TOWER.options...)
                raise TowerLoadError(str(err).replace(".TOWER.", f".{name}.")) from None
        self.towers = nn.ModuleDict(towers)
        self.projections = nn.ModuleDict(
            {name: self._projection(config, name, tower) for name, tower in towers.items()}
        )
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        # The config as built: every tower's resolved architecture, image size and mean/std.
        self.config = config.model_copy(
            update={"towers": {name: tower.config for name, tower in towers.items()}}
        )

    @staticmethod
    def _projection(config: ModelConfig, name: str, tower: Tower) -> nn.Module:
        if config.projection == "always" or (config.projection == "auto" and tower.width != config.embed_dim):
            return nn.Linear(tower.width, config.embed_dim, bias=False)
        if tower.width != config.embed_dim:
            raise ValueError(
                f"tower {name!r} has width {tower.width} but embed_dim is {config.embed_dim}; set projection to 'auto'"
            )
        return nn.Identity()

    # ----------------------------------------------------------------- properties
    @property
    def views(self) -> list[View]:
        """Image views that have a tower, in config order."""
        return list(self.config.image_towers)

    @property
    def has_text(self) -> bool:
        return self.config.text_tower is not None

    @property
    def embed_dim(self) -> int:
        return int(self.config.embed_dim)

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def tower_name(self, view: View | str) -> str:
        """The name of the tower that encodes `view`; a clear error if the model has none."""
        view = View.parse(view)
        if view is View.TEXT:
            if self.config.text_tower is None:
                raise ValueError(f"model {self.config.name!r} has no text tower")
            return self.config.text_tower
        if view not in self.config.image_towers:
            have = ", ".join(v.value for v in self.views)
            raise ValueError(
                f"model {self.config.name!r} has no tower for view {view.value!r} (it has: {have})"
            )
        return self.config.image_towers[view]

    def tower(self, view: View | str) -> Tower:
        return self._tower(self.tower_name(view))

    def _tower(self, name: str) -> Tower:
        tower = self.towers[name]
        assert isinstance(tower, Tower)  # nn.ModuleDict is not generic; __init__ puts only Towers in it
        return tower

    def logit_scale_value(self) -> torch.Tensor:
        """exp(logit_scale), clamped at `logit_scale_max` (CLIP's 100) so training cannot blow up."""
        return self.logit_scale.exp().clamp(max=self.config.logit_scale_max)

    # ----------------------------------------------------------------- encoding
    def encode(self, view: View | str, inputs: Any) -> torch.Tensor:
        """L2-normalised (N, D) embeddings of `inputs` (pixels (N,3,H,W), or a list of strings)."""
        name = self.tower_name(view)
        features = self.towers[name](inputs)
        return F.normalize(self.projections[name](features), dim=-1)

    def encode_image(self, view: View | str, pixels: torch.Tensor) -> torch.Tensor:
        if View.parse(view) is View.TEXT:
            raise ValueError("encode_image needs an image view; use encode_text for text")
        return self.encode(view, pixels)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.encode(View.TEXT, texts)

    @property
    def text_token_width(self) -> int:
        """Width of the token states `encode_text_tokens` returns."""
        return int(self.tower(View.TEXT).token_width)

    def encode_text_tokens(self, texts: list[str]) -> TextTokens:
        """`encode_text` plus the text tower's token states and padding mask, from one pass."""
        return self.text_tokens_from_tower_output(self.tower(View.TEXT).forward_tokens(texts))

    def text_tokens_from_tower_output(self, output: TokenOutput) -> TextTokens:
        """Project a text tower's `TokenOutput` (e.g. cached from a frozen tower) into the space."""
        embedding = F.normalize(self.projections[self.tower_name(View.TEXT)](output.pooled), dim=-1)
        return TextTokens(embedding=embedding, tokens=output.tokens, attention_mask=output.attention_mask)

    def forward(self, batch: dict[View, Any]) -> dict[View, torch.Tensor]:
        """Encode every view present in `batch` (keys are views); other keys are ignored."""
        return {view: self.encode(view, value) for view, value in batch.items() if isinstance(view, View)}

    def image_transform(self, view: View | str, train: bool = False) -> Callable:
        """PIL image -> normalised (3, H, W) tensor for this view's tower: RGB, bicubic resize to
        the view's size (`view_image_sizes`, else the tower's image size), ToTensor, its mean/std.
        Training and evaluation both call this, so their sizes agree. `train=True` adds a mild
        colour jitter (brightness, contrast, saturation 0.2, as torchvision's ColorJitter;
        photometric only, so co-located views stay geometrically consistent). See
        :class:`geobridge.models.transforms.ViewTransform`."""
        config = self.tower(view).config
        if config.modality != "image":
            raise ValueError("image_transform needs an image view")
        pinned = None if train else self.config.eval_transforms.get(View.parse(view))
        if pinned is not None:  # a converted checkpoint: its authors' exact eval preprocessing
            from geobridge.models.eval_transform import build_eval_transform

            return build_eval_transform(pinned)
        size = self.config.image_size(view)
        # a built image tower's config is resolved: its image size, mean and std are filled in
        assert size is not None and config.mean is not None and config.std is not None
        return ViewTransform(tuple(size), config.mean, config.std, jitter=0.2 if train else 0.0)

    # ----------------------------------------------------------------- freezing
    def tower_blocks(self, view: View | str) -> list[nn.Module]:
        """The blocks of the view's tower, ordered input -> output."""
        return self.tower(view).blocks()

    def freeze_all_but_last(self, n_blocks: int) -> None:
        """Freeze every tower except its last `n_blocks` blocks and the modules after them
        (final norm, tower projection); our projections and the logit scale stay trainable.
        `n_blocks=0` trains only the heads; a negative value unfreezes everything."""
        if n_blocks < 0:
            self.requires_grad_(True)
            return
        for name in self.towers:
            _train_only_last(self._tower(name), n_blocks, head=True)
        self.projections.requires_grad_(True)
        self.logit_scale.requires_grad_(True)

    def freeze_view(self, view: View | str, n_blocks: int) -> None:
        """Train only the last `n_blocks` blocks of `view`'s tower, plus its head when
        `n_blocks` > 0; `0` freezes the tower entirely (e.g. a pretrained text tower whose
        features are then cached). Other towers are left as they are."""
        _train_only_last(self.tower(view), n_blocks, head=n_blocks > 0)

    # ----------------------------------------------------------------- save / load
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `config.json`, `model.safetensors` and tower assets into `directory`, atomically
        (a half-written model never appears under that name)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            (tmp / CONFIG_NAME).write_text(
                json.dumps(self.config.to_json_dict(), indent=2) + "\n", encoding="utf-8"
            )
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(
                _unshare(state),
                str(tmp / WEIGHTS_NAME),
                metadata={"format": "pt", "geobridge": "MultiViewModel"},
            )
            for name in self.towers:
                target = tmp / ASSETS_DIR / name
                target.mkdir(parents=True)
                if not self._tower(name).save_assets(target):
                    target.rmdir()
            if (tmp / ASSETS_DIR).is_dir() and not any((tmp / ASSETS_DIR).iterdir()):
                (tmp / ASSETS_DIR).rmdir()
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> MultiViewModel:
        """Rebuild from `config.json` (no download) and load `model.safetensors` strictly onto `device`
        (the meta device, for a shape-only model, keeps the architecture and no weights)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        for needed in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / needed).is_file():
                raise FileNotFoundError(
                    f"{directory} is not a saved geobridge model: {needed} is missing "
                    f"(a model directory holds {CONFIG_NAME} and {WEIGHTS_NAME}, written by save_pretrained)"
                )
        config = ModelConfig.from_file(directory / CONFIG_NAME)
        model = cls(config, load_weights=False, assets_dir=directory / ASSETS_DIR)
        device = torch.device(device)
        state = load_file(
            str(directory / WEIGHTS_NAME), device="cpu" if device.type == "meta" else str(device)
        )
        model.load_state_dict(state, strict=True)
        return model.to(device)


def _unshare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): give each its own copy."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() else -1
        out[key] = tensor.clone() if ptr in seen else tensor
        if ptr != -1:
            seen.add(ptr)
    return out


def _train_only_last(tower: Tower, n_blocks: int, head: bool) -> None:
    """Freeze ``tower`` except its last ``n_blocks`` blocks (and its head when ``head``)."""
    tower.requires_grad_(False)
    blocks = tower.blocks()
    for block in blocks[len(blocks) - min(n_blocks, len(blocks)) :] if n_blocks > 0 else []:
        block.requires_grad_(True)
    if head:
        for parameter in tower.head_parameters():
            parameter.requires_grad_(True)
