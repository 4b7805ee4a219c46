"""The typed configuration of a dataset build, read from YAML.

Every section is a pydantic model that forbids unknown keys, so a typo in ``build.yaml`` is an
error naming the key instead of a silently ignored setting. Relative paths are resolved against
the YAML file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class BuildConfigError(ValueError):
    """The build configuration is missing, unreadable or invalid; the message says which key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Section):
    """Shared behaviour of every HTTP provider: politeness, retries and the on-disk cache."""

    requests_per_second: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(20.0, gt=0)
    cache_dir: Path | None = None  # default: OUT/_work/http-cache
    user_agent: str = "geobridge-build/0.1"


class OpenAerialMapSource(_Section):
    """Find UAV orthomosaics by bounding box in OpenAerialMap's catalogue and download them."""

    bbox: list[float]  # west, south, east, north in degrees
    base_url: str = "https://api.openaerialmap.org"
    platform: str | None = "uav"
    max_images: int = Field(5, ge=1)

    @field_validator("bbox")
    @classmethod
    def _box(cls, v: list[float]) -> list[float]:
        if len(v) != 4 or not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError("bbox must be [west, south, east, north] with west < east and south < north")
        return v


class SeedSettings(_Section):
    """Stage 1: the sliding window over each orthomosaic's valid pixels."""

    window_m: float = Field(200.0, gt=0)
    stride_m: float = Field(150.0, gt=0)
    min_valid_fraction: float = Field(0.5, ge=0, le=1)


class PanoramaSource(_Section):
    """Where street-view panoramas come from."""

    kind: Literal["local", "google", "mapillary"] = "local"
    catalogue: Path | None = None  # local: CSV/JSON with id, lat, lon, heading, path
    base_url: str | None = None  # HTTP providers: override the service's address (tests, proxies)
    key_env: str | None = None  # name of the environment variable holding the API key
    grid_m: float = Field(50.0, gt=0)  # google: spacing of the metadata probes inside a footprint
    radius_m: float = Field(50.0, gt=0)  # google: search radius of one probe
    image_height_px: int = Field(256, ge=16)

    @model_validator(mode="after")
    def _needs_catalogue(self) -> PanoramaSource:
        if self.kind == "local" and self.catalogue is None:
            raise ValueError("panoramas.kind=local needs panoramas.catalogue (a CSV or JSON file)")
        return self


class SatelliteSource(_Section):
    """Where satellite imagery comes from: an XYZ URL template, a tile directory or MBTiles."""

    kind: Literal["xyz-url", "xyz-dir", "mbtiles"] = "xyz-url"
    url: str | None = None  # e.g. https://tiles.example.com/{z}/{x}/{y}.png
    path: Path | None = None  # xyz-dir: folder with {z}/{x}/{y}.png ; mbtiles: the .mbtiles file
    zoom: int = Field(18, ge=0, le=23)
    tile_size: int = Field(256, ge=16)
    extension: str = "png"

    @model_validator(mode="after")
    def _needs_address(self) -> SatelliteSource:
        if self.kind == "xyz-url":
            if not self.url:
                raise ValueError("satellite.kind=xyz-url needs satellite.url with {z}, {x} and {y}")
            if not all(k in self.url for k in ("{z}", "{x}", "{y}")):
                raise ValueError(f"satellite.url {self.url!r} must contain {{z}}, {{x}} and {{y}}")
        if self.kind in ("xyz-dir", "mbtiles") and self.path is None:
            raise ValueError(f"satellite.kind={self.kind} needs satellite.path")
        return self


class CropSettings(_Section):
    """Stage 2: reverse crops of the orthomosaic centred on each kept panorama."""

    scales_m: list[float] = Field(default_factory=lambda: [80.0, 100.0, 120.0, 150.0, 180.0])
    size_px: int = Field(512, ge=16)
    max_nodata_fraction: float = Field(0.02, ge=0, le=1)

    @field_validator("scales_m")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if not v or any(s <= 0 for s in v):
            raise ValueError("crop.scales_m must be a non-empty list of positive ground sizes in metres")
        return v


class GateSettings(_Section):
    """Stage 3: quality-gate thresholds (a crop passes a gate when its score is >= the minimum,
    and when its cloud fraction is <= ``cloud_max``)."""

    blur_min: float = Field(20.0, ge=0)  # variance of the Laplacian of the grey image
    contrast_min: float = Field(12.0, ge=0)  # standard deviation of grey levels (0..255)
    entropy_min: float = Field(4.0, ge=0)  # Shannon entropy of the grey histogram, bits
    cloud_max: float = Field(0.25, ge=0, le=1)  # fraction of the area bright and flat (cloud)


class DedupSettings(_Section):
    """Stage 3: drop crops whose ground footprints overlap more than ``max_overlap``."""

    max_overlap: float = Field(0.5, ge=0, le=1)
    order: Literal["random", "quality"] = "random"


class ChatEndpoint(_Section):
    """An OpenAI-compatible chat completions endpoint with a vision model."""

    base_url: str  # e.g. https://api.openai.com/v1
    model: str
    key_env: str | None = "OPENAI_API_KEY"
    max_tokens: int = Field(300, ge=16)
    temperature: float = Field(0.2, ge=0)


class TextSettings(_Section):
    """Stage 4: the location text. An endpoint when given, else the embedded world's describer."""

    endpoint: ChatEndpoint | None = None
    world: Path | None = None  # products' world.json: describe locations inside that world offline


class SplitSettings(_Section):
    """How kept locations are assigned to train / val / test (spatial blocks avoid leakage)."""

    val: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.2, ge=0, le=1)
    block_m: float = Field(300.0, gt=0)


DEFAULT_DRONE_NAME_PATTERN = r"(?P<south>-?\d+(?:\.\d+)?)_(?P<west>-?\d+(?:\.\d+)?)_(?P<north>-?\d+(?:\.\d+)?)_(?P<east>-?\d+(?:\.\d+)?)"


class DroneSubsetSettings(_Section):
    """Completing a released GeoLoc drone subset: how footprints are read from file names."""

    name_pattern: str = DEFAULT_DRONE_NAME_PATTERN  # named groups south, west, north, east (degrees)
    search_radius_m: float = Field(50.0, gt=0)  # nearest panorama must lie this close to the centre
    size_px: int = Field(512, ge=16)

    @field_validator("name_pattern")
    @classmethod
    def _groups(cls, v: str) -> str:
        import re

        try:
            groups = set(re.compile(v).groupindex)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None
        missing = {"south", "west", "north", "east"} - groups
        if missing:
            raise ValueError(f"pattern lacks named group(s) {sorted(missing)}")
        return v


class DronePhotoSettings(_Section):
    """A folder of geotagged drone photos: the ground each photo covers, from its tags."""

    hfov_deg: float = Field(73.7, gt=0, lt=180)  # camera's horizontal field of view (DJI 24 mm equivalent)
    default_altitude_m: float = Field(100.0, gt=0)  # height above ground when the photo does not say
    oblique_scale: float = Field(2.0, ge=1)  # an oblique photo sees this much more ground than a nadir one
    max_side_px: int = Field(1024, ge=64)  # photos are stored downsampled to this longest side


class BuildConfig(_Section):
    """A whole build: inputs, providers and every stage's settings."""

    out: Path
    orthomosaics: list[Path] = Field(default_factory=list)
    openaerialmap: OpenAerialMapSource | None = None  # downloaded orthomosaics join `orthomosaics`
    panoramas: PanoramaSource
    satellite: SatelliteSource
    seed: int = 0
    seeds: SeedSettings = Field(default_factory=SeedSettings)
    crop: CropSettings = Field(default_factory=CropSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    text: TextSettings = Field(default_factory=TextSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    drone_subset: DroneSubsetSettings = Field(default_factory=DroneSubsetSettings)
    drone_photos: DronePhotoSettings = Field(default_factory=DronePhotoSettings)
    report_samples: int = Field(4, ge=0)

    def resolve_paths(self, base: Path) -> BuildConfig:
        """A copy whose relative paths are taken from ``base`` (the YAML file's folder)."""

        import os

        def fix(p: Path) -> Path:
            return Path(os.path.normpath(p if p.is_absolute() else base / p))

        def fix_optional(p: Path | None) -> Path | None:
            return None if p is None else fix(p)

        data = self.model_copy(deep=True)
        data.out = fix(data.out)
        data.orthomosaics = [fix(p) for p in data.orthomosaics]
        data.panoramas.catalogue = fix_optional(data.panoramas.catalogue)
        data.satellite.path = fix_optional(data.satellite.path)
        data.text.world = fix_optional(data.text.world)
        data.http.cache_dir = fix_optional(data.http.cache_dir)
        return data


def load_build_config(path: str | Path, overrides: dict | None = None) -> BuildConfig:
    """Read and validate a build YAML: a path, or a shipped config by name (``build-world``).

    Relative paths are resolved against the YAML's folder, or against the working folder when the
    YAML says ``relative_to: working-folder`` (as the shipped configs do: their folder is inside
    the installed package, and their inputs are what you made where you run the command)."""
    import yaml

    path = Path(path)
    if not path.exists() and path.parent == Path("."):
        from geobridge.configs import resolve_config

        try:
            path = resolve_config(path)
        except FileNotFoundError:
            pass
    if not path.exists():
        raise BuildConfigError(
            f"build config not found: {path}. Give a YAML path or a shipped config by name "
            "(build-world; see configs/build-world.yaml)."
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise BuildConfigError(f"cannot parse {path}: {err}") from err
    if not isinstance(raw, dict):
        raise BuildConfigError(f"{path} must hold a mapping of settings, got {type(raw).__name__}")
    relative_to = raw.get("relative_to", "config")
    if relative_to not in ("config", "working-folder"):
        raise BuildConfigError(
            f"{path}: relative_to must be 'config' or 'working-folder', got {relative_to!r}"
        )
    raw.update(overrides or {})
    base = Path.cwd() if relative_to == "working-folder" else path.parent.resolve()
    return parse_build_config(raw, base=base, source=str(path))


def parse_build_config(raw: dict, base: Path | None = None, source: str = "config") -> BuildConfig:
    """Validate a settings mapping; errors name the offending key. ``relative_to`` (where relative
    paths start, see :func:`load_build_config`) is the caller's: ``base`` already says it."""
    raw = {key: value for key, value in raw.items() if key != "relative_to"}
    try:
        config = BuildConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise BuildConfigError(f"invalid build config {source}: {problems}") from err
    return config.resolve_paths(base) if base is not None else config
