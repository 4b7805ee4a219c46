"""PLANET: physical signatures on hand-made images, the physical head, the consistency loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from geobridge.losses import info_nce
from geobridge.losses.planet import (
    PlanetConfig,
    PlanetObjective,
    SignatureConfig,
    build_planet_objective,
    colour_histogram,
    denormalise,
    orientation_histogram,
    physical_signatures,
    ring_power,
    texture_spectrum,
)
from geobridge.models import create_model
from geobridge.models.physical import DESCRIPTORS, PhysicalHead, PhysicalHeadConfig
from geobridge.views import View

REPO = Path(__file__).resolve().parents[1]


def _stripes(period: int = 4, size: int = 32, vertical: bool = True) -> torch.Tensor:
    """Black/white stripes; vertical stripes vary along x (columns)."""
    line = ((torch.arange(size) // (period // 2)) % 2).float()
    image = line.expand(size, size) if vertical else line[:, None].expand(size, size)
    return image.expand(1, 3, size, size).clone()


def _checkerboard(cell: int, size: int = 64) -> torch.Tensor:
    i = torch.arange(size)
    board = (((i[:, None] // cell) + (i[None, :] // cell)) % 2).float()
    return board.expand(1, 3, size, size).clone()


# --------------------------------------------------------------------------- signatures
def test_red_image_colour_histogram_peaks_in_red_top_bin():
    image = torch.zeros(2, 3, 16, 16)
    image[:, 0] = 1.0
    hist = colour_histogram(image, bins=16).view(2, 3, 16)
    assert hist.shape == (2, 3, 16)
    assert torch.allclose(hist.sum(-1), torch.ones(2, 3))
    assert hist[0, 0].argmax() == 15 and hist[0, 0, 15] == 1.0
    assert hist[0, 1, 0] == 1.0 and hist[0, 2, 0] == 1.0  # green and blue all in the bottom bin


def test_colour_histogram_counts_a_half_split_image():
    image = torch.zeros(1, 3, 8, 8)
    image[:, :, :, :4] = 0.55  # bin 8 of 16
    hist = colour_histogram(image, bins=16).view(3, 16)
    assert torch.allclose(hist[:, 0], torch.full((3,), 0.5))
    assert torch.allclose(hist[:, 8], torch.full((3,), 0.5))


def test_stripe_orientations_peak_in_orthogonal_bins():
    vertical = orientation_histogram(_stripes(vertical=True), bins=18)[0]
    horizontal = orientation_histogram(_stripes(vertical=False), bins=18)[0]
    assert vertical.argmax() == 0  # gradient along x: 0 deg
    assert horizontal.argmax() == 9  # gradient along y: 90 deg
    assert vertical[0] > 0.99 and horizontal[9] > 0.99
    assert torch.allclose(vertical.sum(), torch.tensor(1.0))


def test_diagonal_edges_split_between_neighbouring_bins():
    size = 32
    i = torch.arange(size)
    diagonal = ((i[:, None] + i[None, :]) // 4 % 2).float().expand(1, 3, size, size).clone()
    hist = orientation_histogram(diagonal, bins=18)[0]
    # gradient along (1, 1) in image coordinates (y down) is 45 deg: halfway between bins 4 and 5
    assert set(hist.topk(2).indices.tolist()) == {4, 5}
    assert hist[4] + hist[5] > 0.8


def test_flat_image_has_no_orientation_mass():
    assert torch.equal(orientation_histogram(torch.full((1, 3, 16, 16), 0.3)), torch.zeros(1, 18))


def test_fine_checkerboard_has_energy_in_higher_rings_than_coarse():
    fine, coarse = ring_power(_checkerboard(2)), ring_power(_checkerboard(8))
    rings = torch.arange(16, dtype=torch.float32)
    centroid = lambda power: float((power * rings).sum() / power.sum())  # noqa: E731
    assert centroid(fine) > centroid(coarse) + 3
    assert texture_spectrum(_checkerboard(2)).argmax() > texture_spectrum(_checkerboard(8)).argmax()


def test_texture_spectrum_is_contrast_invariant():
    board = _checkerboard(4) * 0.5
    assert torch.allclose(texture_spectrum(board), texture_spectrum(board * 0.2 + 0.3), atol=1e-3)


def test_signature_shapes_follow_the_config():
    config = SignatureConfig(color_bins=8, orientation_bins=12, texture_rings=10)
    sig = physical_signatures(torch.rand(5, 3, 32, 32), config)
    assert {k: tuple(v.shape) for k, v in sig.items()} == {"color": (5, 24), "struc": (5, 12), "tex": (5, 10)}
    assert config.dims == {"color": 24, "struc": 12, "tex": 10}
    with pytest.raises(ValueError, match="B, 3, H, W"):
        physical_signatures(torch.rand(3, 32, 32))


def test_denormalise_inverts_the_tower_normalisation():
    images = torch.rand(2, 3, 8, 8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pixels = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(denormalise(pixels, mean, std), images, atol=1e-6)


# --------------------------------------------------------------------------- physical head
def _head(token_width: int = 32, **kw) -> PhysicalHead:
    torch.manual_seed(0)
    return PhysicalHead(
        PhysicalHeadConfig(
            token_width=token_width,
            signature_dims=SignatureConfig().dims,
            dim=16,
            attention_dim=32,
            heads=4,
            hidden=32,
            **kw,
        )
    )


def test_head_output_shapes_and_norms():
    head = _head()
    t = head.project_text(torch.randn(3, 7, 32), torch.ones(3, 7, dtype=torch.bool))
    f = head.project_signatures(physical_signatures(torch.rand(3, 3, 32, 32)))
    for out in (t, f):
        assert list(out) == list(DESCRIPTORS)
        for value in out.values():
            assert value.shape == (3, 16)
            assert torch.allclose(value.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_padding_tokens_do_not_change_the_projection():
    head = _head().eval()
    tokens = torch.randn(2, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    base = head.project_text(tokens, mask)
    padded_tokens = torch.cat([tokens, 100 * torch.randn(2, 4, 32)], dim=1)
    padded_tokens[0, 3:5] = 50.0  # garbage in the original padding positions too
    padded_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    padded = head.project_text(padded_tokens, padded_mask)
    changed_real = tokens.clone()
    changed_real[0, 1] = 3 * torch.randn(32)  # (a constant shift would vanish in the LayerNorm)
    moved = head.project_text(changed_real, mask)
    for name in DESCRIPTORS:
        assert torch.allclose(base[name], padded[name], atol=1e-5)
        assert not torch.allclose(base[name][0], moved[name][0], atol=1e-3)  # real tokens matter


def test_all_padding_row_is_an_error():
    with pytest.raises(ValueError, match="real token"):
        _head().project_text(torch.randn(2, 3, 32), torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool))


def test_head_save_and_load_roundtrip(tmp_path):
    head = _head().eval()
    head.save_pretrained(tmp_path / "head")
    again = PhysicalHead.from_pretrained(tmp_path / "head").eval()
    tokens, mask = torch.randn(2, 4, 32), torch.ones(2, 4, dtype=torch.bool)
    assert torch.equal(head.project_text(tokens, mask)["tex"], again.project_text(tokens, mask)["tex"])
    with pytest.raises(FileNotFoundError, match="physical_head.json"):
        PhysicalHead.from_pretrained(tmp_path)


# --------------------------------------------------------------------------- objective
TEXTS = [
    "a red roof beside a wide river",
    "green park with tall trees",
    "grey parking lot and a road",
    "blue lake surrounded by grass",
    "narrow streets with small houses",
    "a bridge over the water",
    "a church tower on a square",
    "bare ground next to a highway",
]


def _batch(model, n: int = 8) -> dict:
    torch.manual_seed(1)
    images = torch.rand(n, 3, 32, 32) * 0.3
    for i in range(n):  # each location a distinct colour and stripe direction
        images[i, i % 3] += 0.6
        images[i] = images[i] * (1 + 0.5 * _stripes(period=2 + 2 * (i % 4), vertical=i % 2 == 0)[0])
    tower = model.tower(View.SATELLITE).config
    mean = torch.tensor(tower.mean).view(1, 3, 1, 1)
    std = torch.tensor(tower.std).view(1, 3, 1, 1)
    return {View.SATELLITE: (images.clamp(0, 1) - mean) / std, View.TEXT: TEXTS[:n]}


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return create_model("tiny")


def test_loss_equals_itc_plus_lambda_times_three_info_nce_by_hand(tiny_model):
    config = PlanetConfig(lambda_phy=0.5, dim=16, attention_dim=32, hidden=32)
    objective = build_planet_objective(tiny_model, config)
    batch = _batch(tiny_model)
    emb = objective.embeddings(batch)
    out = objective.loss(emb)
    scale = tiny_model.logit_scale_value()
    by_hand = {d: info_nce(emb[f"text:{d}"], emb[f"satellite:{d}"], scale) for d in DESCRIPTORS}
    itc = info_nce(emb[View.TEXT], emb[View.SATELLITE], scale)
    for d in DESCRIPTORS:
        assert torch.allclose(out.terms[d], by_hand[d], atol=1e-6)
    assert torch.allclose(out.terms["itc"], itc, atol=1e-6)
    assert torch.allclose(out.terms["phy"], sum(by_hand.values()), atol=1e-6)
    assert torch.allclose(out.total, itc + 0.5 * sum(by_hand.values()), atol=1e-5)
    assert torch.equal(out.terms["total"], out.total)


def test_lambda_zero_is_the_plain_text_satellite_loss(tiny_model):
    objective = build_planet_objective(
        tiny_model, PlanetConfig(lambda_phy=0.0, dim=16, attention_dim=32, hidden=32)
    )
    out = objective(_batch(tiny_model))
    assert torch.allclose(out.total, out.terms["itc"])
    assert out.terms["phy"] > 0


def test_masked_satellite_drops_out_of_every_satellite_edge(tiny_model):
    objective = build_planet_objective(tiny_model, PlanetConfig(dim=16, attention_dim=32, hidden=32))
    batch = _batch(tiny_model)
    batch["mask"] = {View.SATELLITE: torch.tensor([True] * 7 + [False])}
    out = objective(batch)
    assert out.counts == {"t-s": 7, "color": 7, "struc": 7, "tex": 7}
    emb = objective.embeddings(_batch(tiny_model))
    keep = torch.tensor([True] * 7 + [False])
    expected = info_nce(emb["text:struc"][keep], emb["satellite:struc"][keep], tiny_model.logit_scale_value())
    assert torch.allclose(out.terms["struc"], expected, atol=1e-6)


def test_physical_gradients_reach_queries_and_text_tower_but_not_image_tower(tiny_model):
    objective = build_planet_objective(tiny_model, PlanetConfig(dim=16, attention_dim=32, hidden=32))
    tiny_model.zero_grad(set_to_none=True)
    objective(_batch(tiny_model)).terms["phy"].backward()
    head = objective.physical_head
    assert head.text.queries.grad is not None and head.text.queries.grad.abs().sum() > 0
    assert head.signatures.mlps["tex"][1].weight.grad.abs().sum() > 0
    text_tower = tiny_model.tower(View.TEXT)
    assert (
        text_tower.token_embed.weight.grad is not None and text_tower.token_embed.weight.grad.abs().sum() > 0
    )
    image_grads = [p.grad for p in tiny_model.tower(View.SATELLITE).parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in image_grads)  # signatures are mined without gradient


def test_a_few_steps_lower_the_physical_loss():
    torch.manual_seed(0)
    model = create_model("tiny")
    objective = build_planet_objective(
        model, PlanetConfig(lambda_phy=1.0, dim=16, attention_dim=32, hidden=64)
    )
    batch = _batch(model)
    tower = model.tower(View.SATELLITE).config
    mined = physical_signatures(denormalise(batch[View.SATELLITE], tower.mean, tower.std))  # fixed inputs
    optimiser = torch.optim.Adam(objective.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):  # only the physical path (text tower + head): the image tower gets no L_phy gradient
        text = model.encode_text_tokens(batch[View.TEXT])
        t = objective.physical_head.project_text(text.tokens, text.attention_mask)
        f = objective.physical_head.project_signatures(mined)
        out = objective.loss(
            {**{f"text:{d}": t[d] for d in DESCRIPTORS}, **{f"satellite:{d}": f[d] for d in DESCRIPTORS}}
        )
        optimiser.zero_grad()
        out.terms["phy"].backward()
        optimiser.step()
        losses.append(float(out.terms["phy"].detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_mismatched_signature_sizes_are_an_error(tiny_model):
    head = _head(token_width=tiny_model.text_token_width)
    with pytest.raises(ValueError, match="signature sizes"):
        PlanetObjective(tiny_model, head, 0.1, SignatureConfig(color_bins=8))


def test_planet_config_file_is_valid():
    data = yaml.safe_load((REPO / "configs" / "planet.yaml").read_text(encoding="utf-8"))
    planet = PlanetConfig(**data.pop("physical"))
    assert planet.signatures.dims == {"color": 48, "struc": 18, "tex": 16}
    from geobridge.train.config import TrainConfig

    config = TrainConfig.from_dict(data)
    assert set(config.data.views) == {"satellite", "text"}
    with pytest.raises(ValueError):
        PlanetConfig(lambda_phy=0.1, colour_bins=16)  # a typo is an error, not a silent default
