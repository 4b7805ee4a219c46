"""Sample4Geo's released weights -> our model directory.

A release is the ``state_dict()`` of a module with ``model`` (a timm backbone created with
``num_classes=0``, ConvNeXt-B ``convnext_base.fb_in22k_ft_in1k_384`` in the paper) and
``logit_scale``; saved from ``model.module`` or from the ``DataParallel`` wrapper (every key then
starts with ``module.``). One backbone serves every view. Its evaluation reads images with
OpenCV, resizes with ``cv2.INTER_LINEAR_EXACT`` to 384 x 384 (ground panoramas to their own
size, e.g. 140 x 768 for CVUSA/CVACT, 384 x 768 for VIGOR), normalises with the backbone's timm
data-config mean/std and L2-normalises the features.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geobridge.models.config import ModelConfig, TowerConfig
from geobridge.models.convert.common import ConversionError, Provenance, build_model, load_checked, sha256_of
from geobridge.models.convert.safe_pickle import load_checkpoint
from geobridge.models.eval_transform import EvalTransform
from geobridge.models.model import MultiViewModel

FORMAT = "sample4geo"
DEFAULT_ARCH = "convnext_base.fb_in22k_ft_in1k_384"
VIEWS = ("drone", "street", "satellite")


def _state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, with a uniform ``module.`` (DataParallel) prefix removed."""
    loaded = load_checkpoint(checkpoint)
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(f"{checkpoint} holds a {type(loaded).__name__}, not a Sample4Geo state_dict")
    bad = sorted(
        str(k) for k, v in loaded.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    )
    if bad:
        raise ConversionError(
            f"{checkpoint} is not a state_dict: entries that are not tensors: {', '.join(bad[:6])}"
        )
    prefixed = [k for k in loaded if k.startswith("module.")]
    if prefixed and len(prefixed) != len(loaded):
        mixed = sorted(k for k in loaded if not k.startswith("module."))
        raise ConversionError(
            f"{checkpoint}: some keys start with 'module.' and some do not: {', '.join(mixed[:6])}"
        )
    return {k.removeprefix("module.") if prefixed else k: v for k, v in loaded.items()}


def convert_sample4geo(
    checkpoint: Path,
    arch: str = DEFAULT_ARCH,
    img_size: int = 384,
    street_size: tuple[int, int] | None = None,
    name: str | None = None,
) -> tuple[MultiViewModel, Provenance]:
    """Read a Sample4Geo state_dict (safely) into our model: one shared timm tower for drone,
    street and satellite; satellite and drone at `img_size`, street at `street_size`."""
    if img_size < 1 or (street_size is not None and min(street_size) < 1):
        raise ConversionError("image sizes must be positive")
    tensors = _state_dict(checkpoint)
    state: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in tensors.items():
        if key == "logit_scale":
            state[key] = tensor.reshape(())
        elif key.startswith("model."):
            state["towers.shared." + key] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(
            "unknown keys in the Sample4Geo checkpoint (expected model.* and "
            "logit_scale): "
            f"{', '.join(sorted(unknown)[:6])}"
        )
    tower = TowerConfig(backend="timm", source=arch, pretrained=False, image_size=(img_size, img_size))
    probe = build_model(
        ModelConfig(
            name="probe",
            embed_dim=1,
            projection="always",
            towers={"shared": tower},
            image_towers={"satellite": "shared"},
        )
    )
    probe_tower = probe.tower("satellite")  # the "shared" tower
    resolved = probe_tower.config
    assert resolved.mean is not None and resolved.std is not None  # a built timm tower fills them in
    sizes = {"street": street_size} if street_size is not None else {}
    transforms = {
        view: EvalTransform(
            size=sizes.get(view, (img_size, img_size)),
            resize="cv2-linear-exact",
            mean=resolved.mean,
            std=resolved.std,
        )
        for view in VIEWS
    }
    config = ModelConfig(
        name=name or f"sample4geo-{arch}",
        embed_dim=probe_tower.width,
        projection="none",
        towers={"shared": resolved.model_copy(update={"arch": None})},
        image_towers={view: "shared" for view in VIEWS},
        view_image_sizes=sizes,
        eval_transforms=transforms,
    )
    model = build_model(config)
    load_checked(model, state, f"Sample4Geo checkpoint {checkpoint.name} (--arch {arch})")
    mean = ", ".join(f"{v:g}" for v in resolved.mean)
    provenance = Provenance(
        format=FORMAT,
        checkpoint=checkpoint.name,
        sha256=sha256_of(checkpoint),
        architecture=f"one timm {arch} (num_classes=0) shared by every view",
        notes=[
            f"eval transform: cv2 INTER_LINEAR_EXACT resize, timm data-config mean ({mean}), as "
            "Sample4Geo's albumentations Resize + Normalize; images decoded by PIL here, "
            "by OpenCV there"
        ],
    )
    return model, provenance
