"""Datasets described by a manifest: the embedded world (``geobridge world``) and built datasets.

On-disk layout (what ``geobridge.world.dataset.generate_world_dataset`` and the builder write;
``root`` is the folder holding ``manifest.parquet``, or the manifest file itself)::

    root/
      manifest.parquet      # id, split, lat, lon, region, text, drone, street, satellite, map, ground
      {train,val,test}/{drone,street,satellite,map}/<id>.png
      {train,val,test}/text.csv        # id,text,lat,lon (not needed when the manifest exists)

Image paths in the manifest are relative to its folder. A query and its positive share the
location id; coordinates come from the manifest. Default protocol ``geobridge`` (one positive by
id, R@1% = top max(1, int(0.01 N)), "AP" = mean reciprocal rank, L@50/100/150).
"""

from __future__ import annotations

from pathlib import Path

from geobridge.data.benchmarks.locations import LocationBenchmark
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.records import Location, read_manifest


@register_benchmark
class WorldBenchmark(LocationBenchmark):
    """A manifest-described dataset, every direction between its views and text to each view."""

    name = "world"
    homepage = "`geobridge world OUT` (renders one) or `geobridge build run` (builds one)"
    layout = "manifest.parquet + {train,val,test}/{drone,street,satellite,map}/<id>.png."

    def __init__(self, root: str | Path, split: str = "test") -> None:
        root = Path(root).expanduser()
        self.manifest_path = root if root.suffix in (".parquet", ".csv") else root / "manifest.parquet"
        super().__init__(self.manifest_path.parent, split=split)
        self.require(self.manifest_path, "manifest")
        if not self.locations():
            raise ValueError(f"{self.manifest_path} has no location in split {split!r}")

    def read_locations(self, split: str) -> list[Location]:
        return read_manifest(self.manifest_path, split=split)
