"""InfoNCE and edge sets: hand-computed values, symmetry, smoothing, masking, presets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from geobridge.losses import Edge, EdgeSet, edge_set, info_nce
from geobridge.views import View

A = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
B = [[0.8, 0.6], [0.28, 0.96], [1.0, 0.0]]
SCALE = 2.0


def _hand_ce(rows: list[list[float]], smoothing: float = 0.0) -> float:
    """Mean cross-entropy of each row with its diagonal target, in plain Python."""
    total = 0.0
    n = len(rows)
    for i, row in enumerate(rows):
        log_z = math.log(sum(math.exp(x) for x in row))
        nll = -(row[i] - log_z)
        uniform = -sum(x - log_z for x in row) / n
        total += (1 - smoothing) * nll + smoothing * uniform
    return total / n


def _logits() -> list[list[float]]:
    return [[SCALE * sum(x * y for x, y in zip(a, b)) for b in B] for a in A]


def test_info_nce_equals_hand_computed_3x3() -> None:
    logits = _logits()
    transposed = [list(col) for col in zip(*logits)]
    a, b = torch.tensor(A), torch.tensor(B)
    forward = info_nce(a, b, SCALE, symmetric=False)
    assert forward.item() == pytest.approx(_hand_ce(logits), rel=1e-6)
    symmetric = info_nce(a, b, SCALE)
    assert symmetric.item() == pytest.approx((_hand_ce(logits) + _hand_ce(transposed)) / 2, rel=1e-6)
    # the two directions differ on this example, so symmetry is a real switch
    assert _hand_ce(logits) != pytest.approx(_hand_ce(transposed), rel=1e-3)


def test_symmetric_is_mean_of_both_directions_and_swap_invariant() -> None:
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(6, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    ab = info_nce(a, b, 10.0, symmetric=False)
    ba = info_nce(b, a, 10.0, symmetric=False)
    assert info_nce(a, b, 10.0).item() == pytest.approx(((ab + ba) / 2).item(), rel=1e-6)
    assert info_nce(a, b, 10.0).item() == pytest.approx(info_nce(b, a, 10.0).item(), rel=1e-6)


def test_label_smoothing_matches_hand_value_and_raises_loss_of_confident_pairs() -> None:
    logits = _logits()
    a, b = torch.tensor(A), torch.tensor(B)
    smoothed = info_nce(a, b, SCALE, symmetric=False, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(_hand_ce(logits, 0.1), rel=1e-6)
    # perfectly aligned, confident embeddings: smoothing penalises the over-confidence
    eye = torch.eye(4)
    assert info_nce(eye, eye, 50.0, label_smoothing=0.1) > info_nce(eye, eye, 50.0) + 1.0


def test_mask_equals_loss_on_subset() -> None:
    torch.manual_seed(1)
    a, b = torch.randn(7, 5), torch.randn(7, 5)
    mask = torch.tensor([True, False, True, True, False, True, True])
    assert info_nce(a, b, 3.0, mask=mask).item() == pytest.approx(
        info_nce(a[mask], b[mask], 3.0).item(), rel=1e-6
    )
    empty = info_nce(a.requires_grad_(), b, 3.0, mask=torch.zeros(7, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


def test_perfect_alignment_beats_random() -> None:
    torch.manual_seed(2)
    z = F.normalize(torch.randn(16, 32), dim=1)
    assert info_nce(z, z, 30.0) < info_nce(z, F.normalize(torch.randn(16, 32), dim=1), 30.0)


def _batch(b: int = 6, d: int = 8, seed: int = 0) -> dict[View, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        v: F.normalize(torch.randn(b, d, generator=g), dim=1)
        for v in (View.DRONE, View.STREET, View.SATELLITE, View.TEXT)
    }


def test_geobridge_preset_edges_and_total() -> None:
    loss_fn = edge_set("geobridge")
    names = {(e.name, e.group) for e in loss_fn.edges}
    assert names == {
        ("d-s", "image"),
        ("s-p", "image"),
        ("p-d", "image"),
        ("t-d", "text"),
        ("t-p", "text"),
        ("t-s", "text"),
    }
    z = _batch()
    out = loss_fn(z, 5.0)
    D, P, S, T = View.DRONE, View.STREET, View.SATELLITE, View.TEXT
    image = (info_nce(z[D], z[S], 5.0) + info_nce(z[S], z[P], 5.0) + info_nce(z[P], z[D], 5.0)) / 3
    text = (info_nce(z[T], z[D], 5.0) + info_nce(z[T], z[P], 5.0) + info_nce(z[T], z[S], 5.0)) / 3
    assert out.terms["image"].item() == pytest.approx(image.item(), rel=1e-6)
    assert out.terms["text"].item() == pytest.approx(text.item(), rel=1e-6)
    assert out.total.item() == pytest.approx((image + text).item(), rel=1e-6)
    assert out.skipped == [] and out.counts["d-s"] == 6


def test_other_presets_contain_the_right_edges() -> None:
    assert [e.name for e in edge_set("image-only").edges] == ["d-s", "s-p", "p-d"]
    assert [e.name for e in edge_set("text-only").edges] == ["t-d", "t-p", "t-s"]
    sat = edge_set("satellite-centric")
    assert [e.name for e in sat.edges] == ["d-s", "p-s", "m-s", "g-s"] and sat.groups == ["satellite"]
    pairs = edge_set("pairs", query="drone", reference="S")
    assert [(e.u, e.v) for e in pairs.edges] == [(View.DRONE, View.SATELLITE)]
    with pytest.raises(ValueError, match="query= and reference="):
        edge_set("pairs")
    with pytest.raises(ValueError, match="unknown edge set"):
        edge_set("nope")


def test_satellite_centric_averages_present_modalities_only() -> None:
    z = _batch()
    out = edge_set("satellite-centric")(z, 4.0)  # no map or ground in this batch
    expected = (
        info_nce(z[View.DRONE], z[View.SATELLITE], 4.0) + info_nce(z[View.STREET], z[View.SATELLITE], 4.0)
    ) / 2
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(out.skipped) == {"m-s", "g-s"}


def test_missing_view_drops_out_of_its_edges_only() -> None:
    z = _batch(b=6)
    street_mask = torch.tensor([True, True, False, True, False, True])
    out = edge_set("geobridge")(z, 5.0, masks={View.STREET: street_mask})
    assert out.counts == {"d-s": 6, "s-p": 4, "p-d": 4, "t-d": 6, "t-p": 4, "t-s": 6}
    expected_sp = info_nce(z[View.SATELLITE][street_mask], z[View.STREET][street_mask], 5.0)
    assert out.terms["s-p"].item() == pytest.approx(expected_sp.item(), rel=1e-6)
    assert out.terms["d-s"].item() == pytest.approx(
        info_nce(z[View.DRONE], z[View.SATELLITE], 5.0).item(), rel=1e-6
    )


def test_edge_with_fewer_than_two_items_is_skipped_not_nan() -> None:
    z = {k: v.clone().requires_grad_() for k, v in _batch(b=4).items()}
    only_one = torch.tensor([False, False, True, False])
    out = edge_set("geobridge")(z, 5.0, masks={View.TEXT: only_one})
    assert set(out.skipped) == {"t-d", "t-p", "t-s"} and "text" not in out.terms
    assert torch.isfinite(out.total) and out.total.item() == pytest.approx(out.terms["image"].item())
    nothing = edge_set("text-only")(z, 5.0, masks={View.TEXT: only_one})
    assert nothing.total.item() == 0.0
    nothing.total.backward()  # still a graph, so a training step does not crash


def test_group_weights_and_custom_string_keys_planet_style() -> None:
    z = _batch()
    g = torch.Generator().manual_seed(5)
    z["text:color"], z["satellite:color"] = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    loss_fn = EdgeSet(
        edges=(
            Edge("text", "satellite", group="itc"),
            Edge("text:color", "satellite:color", group="physical"),
        ),
        group_weights={"physical": 0.5},
    )
    out = loss_fn(z, 3.0)
    assert set(out.terms) == {"t-s", "text:color-satellite:color", "itc", "physical"}
    expected = info_nce(z[View.TEXT], z[View.SATELLITE], 3.0) + 0.5 * info_nce(
        z["text:color"], z["satellite:color"], 3.0
    )
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    phase_two = loss_fn.reweighted({"physical": 0.0})
    assert phase_two(z, 3.0).total.item() == pytest.approx(out.terms["itc"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="no edge"):
        EdgeSet(edges=(Edge("drone", "satellite"),), group_weights={"text": 1.0})


def test_gradients_reach_every_view() -> None:
    z = {k: v.clone().requires_grad_() for k, v in _batch().items()}
    edge_set("geobridge", label_smoothing=0.1)(z, torch.tensor(10.0)).total.backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in z.values())
