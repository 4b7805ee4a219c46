"""Released-checkpoint converters: tiny models in each original's exact module structure, saved
the way their authors save them, converted, and compared with the original code's embeddings.

GeoBridge: a whole module (``drone_encoder.CLIP`` ... ``text_encoder.CLIP``, each a transformers
``CLIPModel``, plus ``logit_scale``) pickled with ``torch.save``. Sample4Geo: the ``state_dict()``
of a module with ``model`` (timm, ``num_classes=0``) and ``logit_scale``, also from DataParallel.
No CLIP tokenizer can be downloaded here, so the text check uses a tiny byte-level CLIP tokenizer
written by the test (same tokenizer class and files as the real one, a 514-token vocabulary).
"""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.models import load_model
from geobridge.models.convert import (
    ConversionError,
    UnsafePickleError,
    convert_geobridge,
    convert_sample4geo,
    load_checkpoint,
)

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TEXTS = ["a river crosses a grid of roads", "two bridges near a park", "x"]


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte -> printable character table (as in its BPE vocabulary)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _tiny_tokenizer(folder: Path) -> Path:
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    saved = folder / "tokenizer"
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(str(saved))
    return saved


def _tiny_clip_config(tokenizer):
    from transformers import CLIPConfig

    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=40,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=12)


# --------------------------------------------------------------------------- GeoBridge's structure
def _features(output) -> torch.Tensor:
    """get_*_features: a tensor in transformers 4, an output with pooler_output in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ImageEncoder(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        from transformers import CLIPModel

        self.CLIP = CLIPModel(config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(_features(self.CLIP.get_image_features(pixel_values=pixels)), dim=-1)


class TextEncoder(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        from transformers import CLIPModel

        self.CLIP = CLIPModel(config)

    def forward(self, tokens: dict) -> torch.Tensor:
        return F.normalize(_features(self.CLIP.get_text_features(**tokens)), dim=-1)


class GeoBridge(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.drone_encoder = ImageEncoder(config)
        self.satellite_encoder = ImageEncoder(config)
        self.street_encoder = ImageEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))


class Payload:
    """What a malicious checkpoint carries: unpickling it calls `func(*args)`."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _images(count: int, size: tuple[int, int] = (45, 61), seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for _ in range(count)]


def _authors_geobridge_transform(size: int):
    """The released test script: bicubic resize to (h, w), ToTensor, ImageNet mean/std."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


@pytest.fixture(scope="module")
def geobridge_release(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("geobridge")
    tokenizer_dir = _tiny_tokenizer(folder / "tok")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    original = GeoBridge(_tiny_clip_config(tokenizer)).eval()
    checkpoint = folder / "GeoBridge.pth"
    torch.save(original, checkpoint)  # the whole module, as the authors release it
    return original, checkpoint, tokenizer_dir, tokenizer


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_geobridge_embeddings_match_the_original(geobridge_release, tmp_path):
    original, checkpoint, tokenizer_dir, tokenizer = geobridge_release
    out = tmp_path / "converted"
    result = _run("convert", "geobridge-official", checkpoint, out, "--tokenizer", tokenizer_dir)
    assert result.exit_code == 0, result.output
    model = load_model(out).eval()
    images = _images(3)
    theirs_transform = _authors_geobridge_transform(32)
    with torch.no_grad():
        for view, encoder in (
            ("drone", original.drone_encoder),
            ("street", original.street_encoder),
            ("satellite", original.satellite_encoder),
        ):
            ours_pixels = torch.stack([model.image_transform(view)(im) for im in images])
            theirs_pixels = torch.stack([theirs_transform(im) for im in images])
            assert torch.allclose(ours_pixels, theirs_pixels, atol=1e-5)
            assert torch.allclose(model.encode(view, ours_pixels), encoder(theirs_pixels), atol=1e-5), view
        theirs_text = original.text_encoder(dict(tokenizer(TEXTS, padding=True, return_tensors="pt")))
        assert torch.allclose(model.encode_text(TEXTS), theirs_text, atol=1e-5)
    assert float(model.logit_scale.detach()) == pytest.approx(float(original.logit_scale.detach()))
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["format"] == "geobridge-official" and provenance["licence"] == "not stated"
    readme = (out / "README.md").read_text()
    assert "45.05" in readme and "Licence (as stated by its authors): not stated" in readme


def test_geobridge_without_text(geobridge_release, tmp_path):
    _, checkpoint, _, _ = geobridge_release
    model, provenance = convert_geobridge(checkpoint, with_text=False)
    assert not model.has_text and any("--no-text" in reason for reason in provenance.dropped)
    with pytest.raises(ConversionError, match="--tokenizer"):
        convert_geobridge(checkpoint)


def test_converting_twice_gives_identical_bytes(geobridge_release, tmp_path):
    _, checkpoint, tokenizer_dir, _ = geobridge_release
    outputs = [tmp_path / "a", tmp_path / "b"]
    for out in outputs:
        result = _run("convert", "geobridge-official", checkpoint, out, "--tokenizer", tokenizer_dir)
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(outputs[0]) for p in outputs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outputs[1]) for p in outputs[1].rglob("*") if p.is_file())
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


# --------------------------------------------------------------------------- malicious pickles
@pytest.mark.parametrize("kind", ["open", "system"])
def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path, kind):
    target = tmp_path / "pwned.txt"
    payload = (
        Payload(builtins.open, str(target), "w") if kind == "open" else Payload(os.system, f"touch {target}")
    )
    evil = tmp_path / "evil.pth"
    torch.save({"model.weight": torch.zeros(2), "hook": payload}, evil)
    with pytest.raises(UnsafePickleError, match="refusing to run code"):
        load_checkpoint(evil)
    assert not target.exists()
    result = _run("convert", "sample4geo", evil, tmp_path / "out", "--arch", "convnext_atto")
    assert result.exit_code != 0 and result.output.strip().startswith("error: refused")
    assert len(result.output.strip().splitlines()) == 1
    assert not target.exists() and not (tmp_path / "out").exists()


def test_a_payload_inside_a_pickled_module_is_refused(geobridge_release, tmp_path):
    original, _, tokenizer_dir, _ = geobridge_release
    target = tmp_path / "pwned.txt"
    evil_model = GeoBridge(original.text_encoder.CLIP.config)
    evil_model.drone_encoder.extra = Payload(builtins.open, str(target), "w")
    torch.save(evil_model, tmp_path / "evil.pth")
    result = _run(
        "convert", "geobridge-official", tmp_path / "evil.pth", tmp_path / "out", "--tokenizer", tokenizer_dir
    )
    assert result.exit_code != 0 and "refused: the checkpoint asks to call io.open(" in result.output
    assert not target.exists()


# --------------------------------------------------------------------------- Sample4Geo's structure
class TimmModel(nn.Module):
    """Sample4Geo's model: a timm backbone without classifier and a learnable logit scale."""

    def __init__(self, name: str) -> None:
        super().__init__()
        import timm

        self.model = timm.create_model(name, pretrained=False, num_classes=0)
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


def _authors_sample4geo_transform(image: Image.Image, size: tuple[int, int], mean, std) -> torch.Tensor:
    """Sample4Geo's val transform: cv2 INTER_LINEAR_EXACT resize, albumentations Normalize, ToTensorV2."""
    import cv2

    array = cv2.resize(np.asarray(image), (size[1], size[0]), interpolation=cv2.INTER_LINEAR_EXACT)
    mean_px = np.asarray(mean, dtype=np.float32) * 255.0
    denominator = np.reciprocal(np.asarray(std, dtype=np.float32) * 255.0, dtype=np.float32)
    return torch.from_numpy(((array.astype(np.float32) - mean_px) * denominator).transpose(2, 0, 1).copy())


@pytest.fixture(scope="module")
def sample4geo_release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample4geo")
    torch.manual_seed(1)
    original = TimmModel("convnext_atto").eval()
    plain = folder / "weights_plain.pth"
    torch.save(original.state_dict(), plain)
    parallel = folder / "weights_dp.pth"
    torch.save(nn.DataParallel(original).state_dict(), parallel)  # every key starts with module.
    return original, plain, parallel


@pytest.mark.parametrize("which", ["plain", "parallel"])
def test_sample4geo_embeddings_match_the_original(sample4geo_release, tmp_path, which):
    original, plain, parallel = sample4geo_release
    checkpoint = plain if which == "plain" else parallel
    out = tmp_path / "s4g"
    result = _run(
        "convert",
        "sample4geo",
        checkpoint,
        out,
        "--arch",
        "convnext_atto",
        "--img-size",
        "64",
        "--street-size",
        "32x128",
        "--published",
        "sample4geo-cvusa",
    )
    assert result.exit_code == 0, result.output
    model = load_model(out).eval()
    import timm
    from timm.data import resolve_data_config

    data = resolve_data_config({}, model=timm.create_model("convnext_atto", pretrained=False, num_classes=0))
    images = _images(2, size=(70, 150))
    with torch.no_grad():
        for view, size in (("satellite", (64, 64)), ("drone", (64, 64)), ("street", (32, 128))):
            ours = torch.stack([model.image_transform(view)(im) for im in images])
            theirs = torch.stack(
                [_authors_sample4geo_transform(im, size, data["mean"], data["std"]) for im in images]
            )
            assert ours.shape[-2:] == size and torch.allclose(ours, theirs, atol=1e-6)
            assert torch.allclose(model.encode(view, ours), F.normalize(original(theirs), dim=-1), atol=1e-5)
    assert "98.68" in (out / "README.md").read_text()


def test_sample4geo_unknown_missing_and_misshapen_keys_are_named(sample4geo_release, tmp_path):
    original, plain, _ = sample4geo_release
    state = original.state_dict()
    extra = tmp_path / "extra.pth"
    torch.save({**state, "model.head.fc.weight": torch.zeros(3, 320)}, extra)
    with pytest.raises(ConversionError, match="model.head.fc.weight"):
        convert_sample4geo(extra, arch="convnext_atto")
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "model.stem.0.weight"}, missing)
    with pytest.raises(ConversionError, match="towers.shared.model.stem.0.weight"):
        convert_sample4geo(missing, arch="convnext_atto")
    stray = tmp_path / "stray.pth"
    torch.save({**state, "queue": torch.zeros(1)}, stray)
    with pytest.raises(ConversionError, match="queue"):
        convert_sample4geo(stray, arch="convnext_atto")
    result = _run("convert", "sample4geo", plain, tmp_path / "out", "--arch", "convnext_femto")
    assert result.exit_code != 0 and result.output.startswith("error:") and "shapes differ" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample4geo", "NOFILE", "out"], "not found"),
        (["sample4geo", "CKPT", "out", "--street-size", "140by768"], "HxW"),
        (["sample4geo", "CKPT", "out", "--published", "nope"], "no published numbers"),
        (["geobridge-official", "CKPT", "out", "--no-text"], "not a pickled GeoBridge module"),
    ],
)
def test_bad_input_is_one_error_line(sample4geo_release, tmp_path, args, message):
    _, plain, _ = sample4geo_release
    args = [str(plain) if a == "CKPT" else str(tmp_path / a) if a in ("NOFILE", "out") else a for a in args]
    result = _run("convert", *args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output


def test_not_a_zip_is_an_error(tmp_path):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="zip archive"):
        load_checkpoint(bogus)
