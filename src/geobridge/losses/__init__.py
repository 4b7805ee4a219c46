"""Contrastive losses: InfoNCE, edge sets over views, distributed gathering.

from geobridge.losses import edge_set
loss_fn = edge_set("geobridge")
out = loss_fn({View.DRONE: zd, View.SATELLITE: zs, ...}, model.logit_scale_value(), masks)
out.total.backward(); out.terms["image"]
"""

from geobridge.losses.distributed import all_gather_with_grad, gather_batch, is_distributed
from geobridge.losses.edges import PRESETS, Edge, EdgeSet, LossOutput, edge_set
from geobridge.losses.infonce import info_nce

__all__ = [
    "info_nce",
    "Edge",
    "EdgeSet",
    "LossOutput",
    "edge_set",
    "PRESETS",
    "all_gather_with_grad",
    "gather_batch",
    "is_distributed",
]
