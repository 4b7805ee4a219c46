"""timm image towers (Sample4Geo uses a shared ConvNeXt-B at 384 px).

`source` is a timm model name; `options` are passed to ``timm.create_model`` (e.g. ``depths`` and
``dims`` for a tiny ConvNeXt). The classifier is removed (``num_classes=0``) so the tower returns
pooled features. Pretrained weights (``pretrained: true``) come from disk when they are there (a
file given as ``options.pretrained_cfg_overlay: {file: PATH}``, timm's own option, or the Hugging
Face cache), else from the hub when it answers; otherwise one error says how to supply them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from geobridge.models.config import TowerConfig
from geobridge.models.registry import register_backend
from geobridge.models.towers.base import Tower, check_image_batch
from geobridge.models.weights import local_first


class TimmTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool) -> None:
        super().__init__()
        import timm
        from timm.data import resolve_data_config

        source = config.source
        if source is None:
            raise ValueError("timm tower needs a source: a timm model name such as convnext_base")
        if not timm.is_model(source):
            raise ValueError(f"timm tower: unknown model {source!r}; see timm.list_models()")
        options = dict(config.options)
        if bool(load_weights and config.pretrained):
            self.model = local_first(
                lambda: timm.create_model(source, pretrained=True, num_classes=0, **options),
                "timm",
                source,
            )
        else:
            options.pop("pretrained_cfg_overlay", None)  # a weights file only matters when loading weights
            self.model = timm.create_model(source, pretrained=False, num_classes=0, **options)
        data = resolve_data_config({}, model=self.model)
        self.config = config.model_copy(
            update={
                "arch": {"model_name": config.source, **config.options},
                "image_size": config.image_size or tuple(data["input_size"][1:]),
                "mean": config.mean or tuple(data["mean"]),
                "std": config.std or tuple(data["std"]),
            }
        )

    @property
    def width(self) -> int:
        # timm.create_model is typed as returning nn.Module; every timm model has an int num_features
        return int(self.model.num_features)  # type: ignore[arg-type]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        check_image_batch(pixels)
        return self.model(pixels)

    def blocks(self) -> list[nn.Module]:
        for name in ("stages", "blocks", "layers"):
            found = getattr(self.model, name, None)
            if isinstance(found, (nn.Sequential, nn.ModuleList)):
                return list(found)
        raise NotImplementedError(f"timm: no block list for {type(self.model).__name__}")

    def head(self) -> list[nn.Module]:
        return [
            m
            for m in (
                getattr(self.model, "norm_pre", None),
                getattr(self.model, "head", None),
                getattr(self.model, "norm", None),
                getattr(self.model, "fc_norm", None),
            )
            if isinstance(m, nn.Module)
        ]


@register_backend("timm")
def build_timm(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    return TimmTower(config, load_weights)
