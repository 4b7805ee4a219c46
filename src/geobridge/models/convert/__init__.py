"""Released cross-view checkpoints -> geobridge model directories, without running their code.

from geobridge.models.convert import convert_geobridge, convert_sample4geo, write_model_dir
"""

from geobridge.models.convert.common import ConversionError, Provenance, read_provenance, write_model_dir
from geobridge.models.convert.geobridge_official import convert_geobridge
from geobridge.models.convert.model_card import render_readme
from geobridge.models.convert.safe_pickle import UnsafePickleError, load_checkpoint
from geobridge.models.convert.sample4geo import convert_sample4geo

__all__ = [
    "ConversionError",
    "Provenance",
    "UnsafePickleError",
    "convert_geobridge",
    "convert_sample4geo",
    "load_checkpoint",
    "read_provenance",
    "render_readme",
    "write_model_dir",
]
