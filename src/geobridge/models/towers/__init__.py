"""Tower backends. Importing this package registers every backend with the registry.

Heavy libraries (transformers, open_clip, timm, sentence-transformers) are imported only when a
tower of that backend is built.
"""

from geobridge.models.towers import hf_clip, open_clip, sentence_transformers, timm, tiny  # noqa: F401
from geobridge.models.towers.base import Tower, TowerLoadError

__all__ = ["Tower", "TowerLoadError"]
