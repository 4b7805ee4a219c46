"""Protocols exactly as the published numbers were measured (issue 12, item 6), each on a
hand-computed case: VIGOR's semi-positives per query row, GeoText-1652's official evaluation
(both directions over one all-views gallery), and University-1652's multi-query and
k-reciprocal re-ranking options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import EvaluationError, evaluate


def at_angles(degrees) -> np.ndarray:
    """Unit 2-D vectors; the cosine between two is the cosine of their angle difference."""
    rad = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def emb(degrees, ids, **kw) -> Embeddings:
    return Embeddings(at_angles(degrees), np.array(ids, dtype=str), **kw)


def run(args):
    return CliRunner().invoke(app, args)


# ---------------------------------------------------------------------------------------------
# VIGOR: semi-positives per query row


def two_panoramas_sharing_a_positive():
    """Panoramas A (0 deg) and B (45 deg) share the positive satellite "pos" (30 deg).
    A: s1 (10 deg) is above pos -> rank 1; A's semi-positive is s1 -> a hit.
    B: s2 (50 deg, 5 deg away) is above pos (15 deg away) -> rank 1; B's semi-positive is s2 -> a hit.
    Keyed by query id, one list serves both: with {"pos": ["s2"]} A misses (hit rate 50)."""
    gallery = emb([30, 10, 50, 100], ["pos", "s1", "s2", "x"])
    query = emb([0, 45], ["pos", "pos"])
    return query, gallery, [["s1"], ["s2"]]


def test_vigor_semi_positives_per_row_differ_for_panoramas_sharing_a_positive():
    query, gallery, rows = two_panoramas_sharing_a_positive()
    per_row = evaluate(query, gallery, "vigor", semi_positives=rows)
    assert per_row.per_query["rank"].tolist() == [1, 1]
    assert per_row.per_query["semi_positives_above"].tolist() == [1, 1]
    assert per_row.metrics["hit_rate"] == 100.0
    keyed = evaluate(query, gallery, "vigor", semi_positives={"pos": ["s2"]})
    assert keyed.metrics["hit_rate"] == 50.0
    assert any("2 queries share an id" in note for note in keyed.notes)
    # the per-row lists stored in the query embeddings are used without any option
    stored = Embeddings(query.emb, query.ids, semi_positives=rows)
    assert evaluate(stored, gallery, "vigor").metrics["hit_rate"] == 100.0
    with pytest.raises(EvaluationError, match="given twice"):
        evaluate(stored, gallery, "vigor", semi_positives=rows)


def test_vigor_npz_per_row_semi_positives_and_json_formats(tmp_path):
    query, gallery, rows = two_panoramas_sharing_a_positive()
    Embeddings(query.emb, query.ids, semi_positives=[["s1"], ["s2", "x"]]).save(tmp_path / "q_rows.npz")
    query.save(tmp_path / "q.npz")
    gallery.save(tmp_path / "g.npz")
    loaded = Embeddings.load(tmp_path / "q_rows.npz")
    assert loaded.semi_positives.tolist() == [["s1", ""], ["s2", "x"]]  # padded with ""
    assert loaded.semi_positive_lists() == [["s1"], ["s2", "x"]]

    def hit_rate(query_file, *extra):
        out = run(["evaluate", "--query", str(tmp_path / query_file), "--gallery", str(tmp_path / "g.npz"),
                   "--protocol", "vigor", "--quiet", "--json", str(tmp_path / "r.json"), *extra])
        assert out.exit_code == 0, out.output
        return json.loads((tmp_path / "r.json").read_text())["metrics"]["hit_rate"]

    assert hit_rate("q_rows.npz") == 100.0
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    assert hit_rate("q.npz", "--semi-positives", str(tmp_path / "rows.json")) == 100.0
    (tmp_path / "keyed.json").write_text(json.dumps({"pos": ["s2"]}))
    assert hit_rate("q.npz", "--semi-positives", str(tmp_path / "keyed.json")) == 50.0
    # an older mapping written with one key per panorama: the repeat with another list is refused
    (tmp_path / "repeat.json").write_text('{"pos": ["s1"], "pos": ["s2"]}')
    out = run(["evaluate", "--query", str(tmp_path / "q.npz"), "--gallery", str(tmp_path / "g.npz"),
               "--protocol", "vigor", "--semi-positives", str(tmp_path / "repeat.json")])
    assert out.exit_code != 0 and "query id 'pos' appears twice with different semi-positive lists" in out.output
    (tmp_path / "same.json").write_text('{"pos": ["s2"], "pos": ["s2"]}')  # repeats that agree are read
    assert hit_rate("q.npz", "--semi-positives", str(tmp_path / "same.json")) == 50.0
    (tmp_path / "short.json").write_text(json.dumps([["s1"]]))
    out = run(["evaluate", "--query", str(tmp_path / "q.npz"), "--gallery", str(tmp_path / "g.npz"),
               "--protocol", "vigor", "--semi-positives", str(tmp_path / "short.json")])
    assert out.exit_code != 0 and "1 semi-positive lists for 2 queries" in out.output
