"""Edge sets: a training loss as a weighted set of InfoNCE edges between views.

An `Edge` joins two embedding keys (views such as drone/satellite/text, or any named tensor) and
belongs to a *group*. The loss of a batch is

    group_g = sum_e w_e * InfoNCE_e / sum_e w_e     over the edges of g that have >= 2 valid items
    total   = sum_g W_g * group_g                   over the groups with at least one valid edge

GeoBridge: image group = mean(d-s, s-p, p-d), text group = mean(t-d, t-p, t-s), total = image +
text. A location whose view is missing (masks[view][i] is False) drops out of the edges touching
that view only. An edge with fewer than 2 valid items contributes nothing; it is listed in
`LossOutput.skipped` (never a NaN).

Extending without changing this class:
- PLANET: its physical terms are more edges in another group. Put the descriptors in the
  embeddings dict under string keys (e.g. ``"text:color"`` and ``"satellite:color"``), add
  ``Edge("text:color", "satellite:color", group="physical")`` (same for struc and tex), and set
  ``group_weights={"physical": lam}``: total = L_itc + lam * L_phy. (PLANET sums the three
  physical terms; with the mean used here, lam absorbs the factor 3.)
- GLEAM-C's two phases: a phase is an EdgeSet. Phase one uses e.g. ``edge_set("pairs",
  query=View.STREET, reference=View.SATELLITE)``; phase two ``edge_set("satellite-centric")``;
  the trainer switches the set at the phase boundary (or `reweighted()` changes weights).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import torch

from geobridge.losses.distributed import gather_batch
from geobridge.losses.infonce import info_nce
from geobridge.views import View

Key = Hashable  # a View, or a string naming any other embedding tensor


def _key_name(key: Key) -> str:
    return key.letter.lower() if isinstance(key, View) else str(key)


def _as_key(key: Key) -> Key:
    if isinstance(key, str):
        try:
            return View.parse(key)
        except ValueError:
            return key
    return key


@dataclass(frozen=True)
class Edge:
    """One InfoNCE term between embeddings `u` and `v`; `name` defaults to e.g. "d-s"."""

    u: Key
    v: Key
    weight: float = 1.0
    group: str = "image"
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "u", _as_key(self.u))
        object.__setattr__(self, "v", _as_key(self.v))
        if self.u == self.v:
            raise ValueError(f"an edge joins two different keys; got {self.u!r} twice")
        if self.weight < 0:
            raise ValueError(f"edge weight must be >= 0; got {self.weight}")
        if not self.name:
            object.__setattr__(self, "name", f"{_key_name(self.u)}-{_key_name(self.v)}")


@dataclass
class LossOutput:
    """total: the scalar to back-propagate. terms: every computed edge and group by name
    (e.g. "d-s", "image"), detached from nothing (log with .item()). counts: valid items per
    edge. skipped: edges that contributed nothing (view absent, or fewer than 2 valid items)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EdgeSet:
    """A loss over a batch of embeddings: InfoNCE per edge, groups averaged, groups summed.

    symmetric / label_smoothing apply to every edge. gather=True all-gathers embeddings and
    masks (with gradient) across ranks when torch.distributed is initialised, so negatives come
    from the global batch; every rank must then pass the same keys in the same order.
    """

    edges: tuple[Edge, ...]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    symmetric: bool = True
    label_smoothing: float = 0.0
    gather: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(self.edges))
        names = [e.name for e in self.edges]
        if len(set(names)) != len(names):
            raise ValueError(f"edge names must be unique; got {names}")
        groups = {e.group for e in self.edges}
        clash = groups & set(names)
        if clash:
            raise ValueError(f"group names must differ from edge names; both use {sorted(clash)}")
        unknown = sorted(set(self.group_weights) - groups)
        if unknown:
            raise ValueError(
                f"group_weights names groups {unknown} that have no edge; groups are {sorted(groups)}"
            )

    @property
    def groups(self) -> list[str]:
        """Group names in first-appearance order."""
        return list(dict.fromkeys(e.group for e in self.edges))

    @property
    def keys(self) -> list[Key]:
        """Every embedding key an edge uses."""
        return list(dict.fromkeys(k for e in self.edges for k in (e.u, e.v)))

    def reweighted(self, group_weights: Mapping[str, float] | None = None, **changes) -> EdgeSet:
        """A copy with other group weights (or other fields), e.g. for a phase schedule."""
        if group_weights is not None:
            changes["group_weights"] = dict(group_weights)
        return replace(self, **changes)

    def __call__(
        self,
        embeddings: Mapping[Key, torch.Tensor],
        logit_scale: torch.Tensor | float,
        masks: Mapping[Key, torch.Tensor] | None = None,
    ) -> LossOutput:
        embeddings = {_as_key(k): v for k, v in embeddings.items()}
        masks = {_as_key(k): v for k, v in masks.items()} if masks is not None else None
        used = {k: embeddings[k] for k in self.keys if k in embeddings}
        used_masks = {k: masks[k] for k in used if masks is not None and k in masks} or None
        if self.gather and used:
            used, used_masks = gather_batch(used, used_masks)
        terms: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        skipped: list[str] = []
        group_sum: dict[str, torch.Tensor] = {}
        group_weight: dict[str, float] = {}
        for edge in self.edges:
            if edge.u not in used or edge.v not in used:
                skipped.append(edge.name)
                continue
            a, b = used[edge.u], used[edge.v]
            valid = _valid(a, edge.u, used_masks) & _valid(b, edge.v, used_masks)
            counts[edge.name] = int(valid.sum())
            if counts[edge.name] < 2 or edge.weight == 0:
                skipped.append(edge.name)
                continue
            mask = None if bool(valid.all()) else valid
            loss = info_nce(
                a, b, logit_scale, symmetric=self.symmetric, label_smoothing=self.label_smoothing, mask=mask
            )
            terms[edge.name] = loss
            group_sum[edge.group] = group_sum.get(edge.group, 0.0) + edge.weight * loss
            group_weight[edge.group] = group_weight.get(edge.group, 0.0) + edge.weight
        total: torch.Tensor | None = None
        for group in self.groups:
            if group not in group_sum:
                continue
            value = group_sum[group] / group_weight[group]
            terms[group] = value
            weighted = self.group_weights.get(group, 1.0) * value
            total = weighted if total is None else total + weighted
        if total is None:  # nothing valid: a zero that still back-propagates
            total = sum((v.sum() * 0.0 for v in used.values()), torch.zeros(()))
        return LossOutput(total=total, terms=terms, counts=counts, skipped=skipped)


def _valid(tensor: torch.Tensor, key: Key, masks: Mapping[Key, torch.Tensor] | None) -> torch.Tensor:
    if masks is not None and key in masks:
        mask = masks[key].to(device=tensor.device, dtype=torch.bool)
        if mask.shape != tensor.shape[:1]:
            raise ValueError(
                f"mask of {_key_name(key)} has shape {tuple(mask.shape)}; embeddings have {tensor.shape[0]} rows"
            )
        return mask
    return torch.ones(tensor.shape[0], dtype=torch.bool, device=tensor.device)


# --------------------------------------------------------------------------- presets
IMAGE_EDGES = ((View.DRONE, View.SATELLITE), (View.SATELLITE, View.STREET), (View.STREET, View.DRONE))
TEXT_EDGES = ((View.TEXT, View.DRONE), (View.TEXT, View.STREET), (View.TEXT, View.SATELLITE))
SATELLITE_QUERY_VIEWS = (View.DRONE, View.STREET, View.MAP, View.GROUND)
PRESETS = ("geobridge", "image-only", "text-only", "satellite-centric", "pairs")


def _edges(pairs: Iterable[tuple[Key, Key]], group: str) -> list[Edge]:
    return [Edge(u, v, group=group) for u, v in pairs]


def edge_set(
    name: str,
    *,
    query: View | str | None = None,
    reference: View | str | None = None,
    views: Iterable[View | str] | None = None,
    symmetric: bool = True,
    label_smoothing: float = 0.0,
    gather: bool = False,
    group_weights: Mapping[str, float] | None = None,
) -> EdgeSet:
    """A preset edge set.

    geobridge: image group (d-s, s-p, p-d) + text group (t-d, t-p, t-s). image-only / text-only:
    one of those groups (GeoBridge's ablation rows). satellite-centric (GLEAM-C): every query
    view in `views` (default drone, street, map, ground) to satellite, one group. pairs
    (Sample4Geo): one edge `query`-`reference`.
    """
    if name == "geobridge":
        edges = _edges(IMAGE_EDGES, "image") + _edges(TEXT_EDGES, "text")
    elif name == "image-only":
        edges = _edges(IMAGE_EDGES, "image")
    elif name == "text-only":
        edges = _edges(TEXT_EDGES, "text")
    elif name == "satellite-centric":
        chosen = [View.parse(v) for v in (views if views is not None else SATELLITE_QUERY_VIEWS)]
        edges = _edges([(v, View.SATELLITE) for v in chosen if v is not View.SATELLITE], "satellite")
    elif name == "pairs":
        if query is None or reference is None:
            raise ValueError(
                "the pairs edge set needs query= and reference= views, e.g. query='drone', reference='satellite'"
            )
        edges = [Edge(View.parse(query), View.parse(reference), group="pairs")]
    else:
        raise ValueError(f"unknown edge set {name!r}; presets: {', '.join(PRESETS)}")
    if name != "pairs" and (query is not None or reference is not None):
        raise ValueError("query= and reference= only apply to the pairs edge set")
    if name != "satellite-centric" and views is not None:
        raise ValueError("views= only applies to the satellite-centric edge set")
    return EdgeSet(
        edges=tuple(edges),
        group_weights=dict(group_weights or {}),
        symmetric=symmetric,
        label_smoothing=label_smoothing,
        gather=gather,
    )
