"""The demo's tables and its check of the paper's finding (pure functions, no training)."""

from __future__ import annotations

from geobridge.demo import PAPER_R1, ablation_table, compare_to_paper, metrics_table


def row(r1: float) -> dict[str, float]:
    return {"R@1": r1, "R@5": r1 + 10, "R@10": r1 + 20, "R@1%": r1, "AP": r1 + 5, "gallery": 80}


def test_finding_is_checked_on_every_street_direction():
    image = {name: row(5.0) for name in ("D2S", "P2D", "D2P", "P2S", "S2P")}
    fused = {name: row(20.0) for name in ("D2S", "P2D", "D2P", "P2S", "S2P")}
    lines = compare_to_paper({"image-only": image, "geobridge": fused})
    assert lines[0].endswith(": reproduced") and len(lines) == 5
    fused["S2P"] = row(4.0)
    lines = compare_to_paper({"image-only": image, "geobridge": fused})
    assert "NOT reproduced" in lines[0]
    assert any(line.startswith("S2P") and "NOT better" in line for line in lines)


def test_tables_show_this_world_beside_the_paper():
    ablation = {"image-only": {"P2D": row(3.0)}, "geobridge": {"P2D": row(12.5)}}
    table = ablation_table(ablation)
    assert "| geobridge (this world) |" in table and "12.50" in table
    assert f"{PAPER_R1['image-only']['P2D']:.2f}" in table  # 4.90 from the paper's ablation
    assert "35-43" in table  # text-only published as a range
    text = metrics_table({"P2D": row(12.5)})
    assert "| P2D | 12.50 | 22.50 | 32.50 | 12.50 | 17.50 | 80 | 1.25 |" in text


def test_a_win_counts_only_when_the_paired_interval_excludes_zero():
    import numpy as np

    from geobridge.demo import STREET_DIRECTIONS

    image = {name: row(10.0) for name in STREET_DIRECTIONS}
    fused = {name: row(12.0) for name in STREET_DIRECTIONS}
    base = np.zeros(200, int)
    base[:20] = 1  # image-only: 10% hits
    noisy = np.roll(base, 7)
    noisy[100:104] = 1  # fused: 12% hits, on mostly other queries -> within noise
    clear = base.copy()
    clear[20:60] = 1  # fused: 30%, a superset of image-only's hits -> significant
    hits = {
        "image-only": {n: base for n in STREET_DIRECTIONS},
        "geobridge": {n: noisy for n in STREET_DIRECTIONS},
    }
    lines = compare_to_paper({"image-only": image, "geobridge": fused}, hits)
    assert "NOT reproduced" in lines[0] and all("within noise" in line for line in lines[1:])
    hits["geobridge"] = {n: clear for n in STREET_DIRECTIONS}
    lines = compare_to_paper(
        {"image-only": image, "geobridge": {n: row(30.0) for n in STREET_DIRECTIONS}}, hits
    )
    assert lines[0].endswith(": reproduced") and all("significant" in line for line in lines[1:])
