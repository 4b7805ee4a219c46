"""Multi-view models: towers per view (or shared), a text tower, one embedding space.

from geobridge.models import create_model, load_model
model = create_model("tiny")             # preset | ModelConfig | config file | saved dir | hub id
z = model.encode("drone", pixels)        # (N, D), L2-normalised
model.save_pretrained("out/model"); load_model("out/model")
"""

from geobridge.models.config import ModelConfig, TowerConfig
from geobridge.models.factory import create_model, load_model, resolve_config
from geobridge.models.model import MultiViewModel
from geobridge.models.registry import list_presets, preset_config, register_backend, register_preset
from geobridge.models.towers.base import Tower, TowerLoadError

__all__ = [
    "ModelConfig",
    "TowerConfig",
    "MultiViewModel",
    "Tower",
    "TowerLoadError",
    "create_model",
    "load_model",
    "resolve_config",
    "list_presets",
    "preset_config",
    "register_backend",
    "register_preset",
]
