"""GeoBridge's released model -> our model directory.

The release is a whole module saved with ``torch.save``: ``logit_scale`` plus ``drone_encoder``,
``satellite_encoder``, ``street_encoder`` and ``text_encoder``, each holding a Hugging Face
``CLIPModel`` under ``.CLIP``. Image encoders use ``get_image_features`` (vision tower + visual
projection), the text encoder ``get_text_features``; features are L2-normalised. Its test
script resizes bicubic to the CLIP input size, ToTensor, ImageNet mean/std (not CLIP's).

We read it with the restricted unpickler (no code from the file runs), map each encoder's
used half onto our hf-clip towers (one per view, no sharing), and drop the unused halves (the
text half of an image encoder, the vision half of the text encoder, each CLIPModel's own
logit_scale), counting them in provenance.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from geobridge.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, TowerConfig
from geobridge.models.convert.common import ConversionError, Provenance, build_model, load_checked, sha256_of
from geobridge.models.convert.safe_pickle import attribute, is_module, load_checkpoint, module_tensors, plain
from geobridge.models.eval_transform import EvalTransform
from geobridge.models.model import MultiViewModel

FORMAT = "geobridge-official"
IMAGE_ENCODERS = {"drone": "drone_encoder", "street": "street_encoder", "satellite": "satellite_encoder"}
TEXT_ENCODER = "text_encoder"

_VISION_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
    "attention_dropout",
    "initializer_range",
    "initializer_factor",
)
_TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "hidden_act",
    "layer_norm_eps",
    "attention_dropout",
    "initializer_range",
    "initializer_factor",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)


def _clip_of(top: Any, encoder: str) -> Any:
    module = attribute(top, encoder)
    if not is_module(module):
        raise ConversionError(
            f"not a GeoBridge checkpoint: it has no module {encoder!r} "
            f"(expected drone_encoder, satellite_encoder, street_encoder, text_encoder)"
        )
    clip = attribute(module, "CLIP")
    if not is_module(clip) or not clip.class_path.endswith("CLIPModel"):
        found = clip.class_path if is_module(clip) else type(clip).__name__
        raise ConversionError(f"{encoder}.CLIP should be a transformers CLIPModel, found {found}")
    return clip


def _sub_arch(clip: Any, encoder: str, part: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The vision or text architecture of a pickled CLIPModel, from its pickled config."""
    from transformers import CLIPTextConfig, CLIPVisionConfig

    config = plain(attribute(clip, "config"))
    if not isinstance(config, dict) or not isinstance(config.get(part), dict):
        raise ConversionError(
            f"{encoder}.CLIP has no readable config.{part}; cannot rebuild its architecture"
        )
    sub = config[part]
    chosen = {k: sub[k] for k in keys if sub.get(k) is not None}
    chosen["projection_dim"] = int(config.get("projection_dim") or sub.get("projection_dim"))
    cls = CLIPVisionConfig if part == "vision_config" else CLIPTextConfig
    return cls(**chosen).to_dict()


def _rename(
    tensors: dict[str, torch.Tensor], with_text: bool
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Their keys -> ours; the unused halves of each CLIPModel are counted in `dropped`."""
    state: dict[str, torch.Tensor] = {}
    dropped: dict[str, int] = {}
    unknown: list[str] = []
    encoders = {enc: view for view, enc in IMAGE_ENCODERS.items()} | {TEXT_ENCODER: "text"}
    for key, tensor in tensors.items():
        if key == "logit_scale":
            state["logit_scale"] = tensor
            continue
        encoder, _, rest = key.partition(".")
        if encoder not in encoders or not rest.startswith("CLIP."):
            unknown.append(key)
            continue
        inner = rest[len("CLIP.") :]
        tower = encoders[encoder]
        used = (
            ("text_model.", "text_projection.")
            if tower == "text"
            else ("vision_model.", "visual_projection.")
        )
        if inner.startswith(used) and (tower != "text" or with_text) and not inner.endswith("position_ids"):
            state[f"towers.{tower}.model.{inner}"] = tensor
        elif (
            inner.startswith(("text_model.", "text_projection.", "vision_model.", "visual_projection."))
            or inner == "logit_scale"
        ):
            reason = f"{encoder}: unused by get_{'text' if tower == 'text' else 'image'}_features"
            if tower == "text" and not with_text:
                reason = f"{encoder}: text tower not converted (--no-text)"
            if inner.endswith("position_ids"):
                reason = "position_ids buffers (a constant range, rebuilt by the model)"
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(
            f"unknown keys in the GeoBridge checkpoint: {', '.join(sorted(unknown)[:6])}"
            + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        )
    return state, dropped


def convert_geobridge(
    checkpoint: Path, tokenizer: Path | None = None, with_text: bool = True, name: str = FORMAT
) -> tuple[MultiViewModel, Provenance]:
    """Read GeoBridge's released file (safely) and return our model with its weights + provenance.

    `tokenizer`: a local directory holding the CLIP tokenizer files (the text tower needs one;
    none can be downloaded here); `with_text=False` drops the text encoder instead.
    """
    if with_text and tokenizer is None:
        raise ConversionError(
            "the GeoBridge checkpoint has a text encoder: pass --tokenizer DIR (a local "
            "copy of the CLIP tokenizer, e.g. openai/clip-vit-large-patch14) or --no-text "
            "to drop it"
        )
    if tokenizer is not None and not tokenizer.is_dir():
        raise ConversionError(f"tokenizer directory {tokenizer} not found")
    top = load_checkpoint(checkpoint)
    if not is_module(top):
        raise ConversionError(f"{checkpoint} holds a {type(top).__name__}, not a pickled GeoBridge module")
    towers: dict[str, TowerConfig] = {}
    transforms: dict[str, EvalTransform] = {}
    for view, encoder in IMAGE_ENCODERS.items():
        arch = _sub_arch(_clip_of(top, encoder), encoder, "vision_config", _VISION_KEYS)
        size = (int(arch["image_size"]),) * 2
        towers[view] = TowerConfig(
            backend="hf-clip",
            modality="image",
            pretrained=False,
            arch=arch,
            image_size=size,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )
        transforms[view] = EvalTransform(
            size=size, resize="pil-bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD
        )
    text_clip = _clip_of(top, TEXT_ENCODER)
    if with_text:
        arch = _sub_arch(text_clip, TEXT_ENCODER, "text_config", _TEXT_KEYS)
        towers["text"] = TowerConfig(
            backend="hf-clip",
            modality="text",
            pretrained=False,
            arch=arch,
            max_length=int(arch["max_position_embeddings"]),
        )
    widths = {int(t.arch["projection_dim"]) for t in towers.values() if t.arch}
    if len(widths) != 1:
        raise ConversionError(
            f"the encoders project to different widths {sorted(widths)}; expected one space"
        )
    config = ModelConfig(
        name=name,
        embed_dim=widths.pop(),
        projection="none",
        towers=towers,
        image_towers={view: view for view in IMAGE_ENCODERS},
        text_tower="text" if with_text else None,
        eval_transforms=transforms,
    )
    state, dropped = _rename(module_tensors(top), with_text)
    with tempfile.TemporaryDirectory() as assets:
        if with_text and tokenizer is not None:
            (Path(assets) / "text").symlink_to(tokenizer.resolve(), target_is_directory=True)
        model = build_model(config, Path(assets))
        load_checked(model, state, f"GeoBridge checkpoint {checkpoint.name}")
    provenance = Provenance(
        format=FORMAT,
        checkpoint=checkpoint.name,
        sha256=sha256_of(checkpoint),
        architecture="four separate CLIP models (drone, street, satellite, text), get_image/text_features",
        dropped=dropped,
        notes=[
            "eval transform: bicubic resize to the CLIP input size, ToTensor, ImageNet mean/std "
            "(the released test script's; not CLIP's own mean/std)",
            "the released test script also averages a horizontal flip: evaluate with --tta flip",
        ],
    )
    if not with_text:
        provenance.notes.append("text encoder dropped (--no-text): this model has no text tower")
    return model, provenance
