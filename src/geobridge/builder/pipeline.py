"""The dataset build: four resumable stages and the export to the GeoLoc layout.

``OUT/_work/`` holds each stage's journal (one JSON line per finished item) and done-marker;
the images made along the way live in ``OUT/_work/{drone,street,satellite}/``. A run that is
interrupted resumes where it stopped: finished stages are skipped, finished items of the
running stage are not redone. Changing a stage's settings redoes that stage and the ones after.

1. ``seeds``      sliding windows over each orthomosaic -> seeds (lat/lon, footprint, GSD)
2. ``candidates`` panoramas inside seed footprints; reverse crops at every scale
3. ``clean``      quality gates (scores kept), then footprint de-duplication in metres
4. ``align``      satellite image at the crop's ground size, the panorama image, the text
5. ``export``     ``OUT/{train,val,test}/{drone,street,satellite}/<id>.png``, ``text.csv``,
                  ``OUT/manifest.parquet`` and the report (``report.md`` + ``report.png``)

Every skipped item keeps its reason; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.atomic import atomic_path, atomic_write_text
from geobridge.builder.config import BuildConfig
from geobridge.builder.gates import GateScores
from geobridge.builder.journal import Journal, StageMarker
from geobridge.builder.providers.base import Panorama, ProviderError

STAGES: tuple[str, ...] = ("seeds", "candidates", "clean", "align", "export")
TRIPLE_VIEWS: tuple[str, ...] = ("drone", "street", "satellite")
GATE_CHUNK = 256  # crops scored (in parallel) per journal write
GATE_WORKERS = 2
#: Street panoramas are exported at most this wide (larger ones are decoded reduced): a 2:1
#: panorama at 2048 x 1024 holds more than any street tower sees (224-640 px).
PANORAMA_MAX_SIDE_PX = 2048


class BuildError(RuntimeError):
    """The build cannot go on at all (no usable orthomosaic, a broken provider configuration)."""


@dataclass
class BuildResult:
    """What a run produced: the manifest, the report and the per-stage summaries."""

    out: Path
    manifest: Path
    report: Path
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_fingerprints(config: BuildConfig) -> dict[str, str]:
    """Per stage, a hash of every setting it (and the stages before it) depends on."""
    c = config.model_dump(mode="json")
    seeds = _hash(c["orthomosaics"], c["openaerialmap"], c["seeds"])
    candidates = _hash(seeds, c["panoramas"], c["crop"])
    clean = _hash(candidates, c["gates"], c["dedup"], c["seed"])
    align = _hash(clean, c["satellite"], c["text"])
    export = _hash(align, c["split"], c["report_samples"])
    return {"seeds": seeds, "candidates": candidates, "clean": clean, "align": align, "export": export}


class Build:
    """One build directory and its configuration; `run()` does whatever is left to do."""

    def __init__(self, config: BuildConfig, progress: bool = True):
        self.config = config
        self.out = Path(config.out)
        self.work = self.out / "_work"
        self.progress = progress
        self.fingerprints = stage_fingerprints(config)
        self.cache_dir = Path(config.http.cache_dir) if config.http.cache_dir else self.work / "http-cache"

    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False)

    def _marker(self, stage: str) -> StageMarker:
        return StageMarker(self.work / f"{stage}.done.json", self.fingerprints[stage])

    def _journal(self, stage: str, key: str, name: str | None = None) -> Journal:
        return Journal(self.work / f"{name or stage}.jsonl", key, self.fingerprints[stage])

    def run(self) -> BuildResult:
        self.work.mkdir(parents=True, exist_ok=True)
        summaries = {}
        for stage in STAGES:
            marker = self._marker(stage)
            done = marker.done()
            if done is not None and stage != "export":
                summaries[stage] = done
                continue
            summaries[stage] = getattr(self, f"_stage_{stage}")(summaries)
            marker.mark(summaries[stage])
        return BuildResult(self.out, self.out / "manifest.parquet", self.out / "report.md", summaries)

    # --- stage 1 --------------------------------------------------------------------------------

    def _stage_seeds(self, summaries) -> dict:
        from geobridge.builder.orthomosaic import OrthomosaicError
        from geobridge.builder.seeds import scan_orthomosaic

        downloads = self._download_orthomosaics()
        orthomosaics = self.orthomosaic_paths()
        if not orthomosaics:
            raise BuildError(
                "no orthomosaics: list GeoTIFF paths under `orthomosaics:` or configure `openaerialmap:`"
                + (f" ({'; '.join(d['reason'] for d in downloads)})" if downloads else "")
            )
        journal = self._journal("seeds", "orthomosaic")
        bar = self._bar(len(orthomosaics), "1/4 seeds")
        for path in orthomosaics:
            if str(path) not in journal:
                try:
                    scan = scan_orthomosaic(path, self.config.seeds)
                    journal.append(
                        {
                            "orthomosaic": str(path),
                            "status": "ok",
                            "reason": "",
                            "seeds": [s.to_dict() for s in scan.seeds],
                            "windows": scan.windows,
                            "rejected_nodata": scan.rejected_nodata,
                        }
                    )
                except OrthomosaicError as err:
                    journal.append(
                        {
                            "orthomosaic": str(path),
                            "status": "skipped",
                            "reason": str(err),
                            "seeds": [],
                            "windows": 0,
                            "rejected_nodata": 0,
                        }
                    )
            bar.update()
        bar.close()
        records = [journal[str(p)] for p in orthomosaics]
        seeds = [s for r in records for s in r["seeds"]]
        if not seeds:
            reasons = (
                "; ".join(r["reason"] for r in records if r["reason"]) or "no window had enough valid pixels"
            )
            raise BuildError(f"no seeds: {reasons}")
        return {
            "orthomosaics": len(records),
            "orthomosaics_skipped": downloads
            + [{"item": r["orthomosaic"], "reason": r["reason"]} for r in records if r["status"] != "ok"],
            "windows": sum(r["windows"] for r in records),
            "windows_rejected_nodata": sum(r["rejected_nodata"] for r in records),
            "seeds": len(seeds),
        }

    def _download_orthomosaics(self) -> list[dict]:
        """Stage 1a: fetch the configured OpenAerialMap orthomosaics; failures as skip records."""
        source = self.config.openaerialmap
        if source is None:
            return []
        from geobridge.builder.crop import safe_id
        from geobridge.builder.providers.http import HttpClient
        from geobridge.builder.providers.openaerialmap import OpenAerialMapCatalogue
        from geobridge.geo import Footprint

        journal = self._journal("seeds", "id", name="seeds-downloads")
        client = HttpClient(self.config.http, cache_dir=None)  # GeoTIFFs are kept in _work, not twice
        catalogue = OpenAerialMapCatalogue(client, base_url=source.base_url)
        try:
            found = catalogue.search(Footprint(*source.bbox), platform=source.platform)
        except ProviderError as err:
            return [{"item": "OpenAerialMap search", "reason": str(err)}]
        skipped = [{"item": "OpenAerialMap", "reason": s} for s in found.skipped]
        records = found.records[: source.max_images]
        bar = self._bar(len(records), "1/4 download orthomosaics")
        for record in records:
            if record.id not in journal:
                target = self.work / "orthomosaics" / f"{safe_id(record.id)}.tif"
                try:
                    catalogue.download(record, target)
                    journal.append({"id": record.id, "path": str(target), "status": "ok", "reason": ""})
                except ProviderError as err:
                    journal.append({"id": record.id, "path": None, "status": "skipped", "reason": str(err)})
            bar.update()
        bar.close()
        return skipped + [
            {"item": r["id"], "reason": r["reason"]} for r in journal.records.values() if r["status"] != "ok"
        ]

    def orthomosaic_paths(self) -> list[Path]:
        """Configured orthomosaics plus the ones downloaded from OpenAerialMap."""
        paths = [Path(p) for p in self.config.orthomosaics]
        if self.config.openaerialmap is not None:
            journal = self._journal("seeds", "id", name="seeds-downloads")
            paths += [Path(r["path"]) for r in journal.records.values() if r["status"] == "ok"]
        return paths

    def seeds(self) -> list:
        from geobridge.builder.seeds import Seed

        journal = self._journal("seeds", "orthomosaic")
        return [
            Seed.from_dict(s)
            for p in self.orthomosaic_paths()
            for s in (journal.get(str(p)) or {}).get("seeds", [])
        ]

    # --- stage 2 --------------------------------------------------------------------------------

    def _stage_candidates(self, summaries) -> dict:
        from geobridge.builder.crop import keep_inside, outside_reason, reverse_crops
        from geobridge.builder.orthomosaic import Orthomosaic
        from geobridge.builder.providers.factory import make_panorama_provider

        seeds = self.seeds()
        try:
            provider = make_panorama_provider(self.config.panoramas, self.config.http, self.cache_dir)
        except ProviderError as err:
            raise BuildError(f"panorama source: {err}") from err
        searches = self._journal("candidates", "seed", name="candidates-search")
        bar = self._bar(len(seeds), "2/4 panoramas")
        for seed in seeds:
            if seed.id not in searches:
                try:
                    found = provider.search(seed.footprint)
                    searches.append(
                        {
                            "seed": seed.id,
                            "status": "ok",
                            "reason": "",
                            "panoramas": [p.__dict__ for p in found.panoramas],
                            "skipped": found.skipped,
                        }
                    )
                except ProviderError as err:
                    searches.append(
                        {
                            "seed": seed.id,
                            "status": "skipped",
                            "reason": str(err),
                            "panoramas": [],
                            "skipped": [],
                        }
                    )
            bar.update()
        bar.close()
        search_records = [searches[s.id] for s in seeds]
        panoramas = [Panorama(**p) for r in search_records for p in r["panoramas"]]
        listed = getattr(provider, "panoramas", [])  # a catalogue lists all: none can vanish unsearched
        selection = keep_inside(panoramas, seeds, listed=listed)
        crops = self._journal("candidates", "pano_id", name="candidates-crops")
        drone_dir = self.work / "drone"
        open_orthos: dict[str, Orthomosaic] = {}
        bar = self._bar(len(selection.kept), "2/4 reverse crops")
        try:
            for kept in selection.kept:
                if kept.panorama.id not in crops:
                    path = kept.seed.orthomosaic
                    if path not in open_orthos:
                        open_orthos[path] = Orthomosaic(path)
                    records = reverse_crops(
                        open_orthos[path],
                        kept,
                        self.config.crop.scales_m,
                        self.config.crop.size_px,
                        self.config.crop.max_nodata_fraction,
                        drone_dir,
                    )
                    crops.append({"pano_id": kept.panorama.id, "crops": records})
                bar.update()
        finally:
            for ortho in open_orthos.values():
                ortho.close()
            bar.close()
        all_crops = [c for k in selection.kept for c in crops[k.panorama.id]["crops"]]
        skipped_rows = sorted({s for r in search_records for s in r["skipped"]})
        return {
            "panoramas_found": len({p.id for p in panoramas}),
            "panoramas_outside_footprints": len(selection.outside),
            "panoramas_outside": [{"item": p.id, "reason": outside_reason(p)} for p in selection.outside],
            "panoramas_kept": len(selection.kept),
            "searches_failed": [
                {"item": r["seed"], "reason": r["reason"]} for r in search_records if r["status"] != "ok"
            ],
            "catalogue_rows_skipped": skipped_rows,
            "crops_made": sum(c["status"] == "ok" for c in all_crops),
            "crops_skipped": [
                {"item": c["id"], "reason": c["reason"]} for c in all_crops if c["status"] != "ok"
            ],
            "crops_per_scale": dict(Counter(f"{c['scale_m']:g}" for c in all_crops if c["status"] == "ok")),
        }

    def crop_records(self) -> list[dict]:
        """All crop records of stage 2, in panorama order."""
        journal = self._journal("candidates", "pano_id", name="candidates-crops")
        return [c for rec in journal.records.values() for c in rec["crops"]]

    # --- stage 3 --------------------------------------------------------------------------------

    def _stage_clean(self, summaries) -> dict:
        from geobridge.builder.dedup import deduplicate
        from geobridge.builder.gates import GATE_NAMES, failed_gates, failure_reason, score_files
        from geobridge.geo import Footprint

        crops = [c for c in self.crop_records() if c["status"] == "ok"]
        scores = self._journal("clean", "id", name="clean-scores")
        todo = [c for c in crops if c["id"] not in scores]
        bar = self._bar(len(crops), "3/4 quality gates")
        bar.update(len(crops) - len(todo))
        for start in range(0, len(todo), GATE_CHUNK):
            chunk = todo[start : start + GATE_CHUNK]
            results = score_files([c["path"] for c in chunk], workers=GATE_WORKERS)
            scores.extend(
                [
                    {"id": c["id"], **r.to_dict(), "error": ""}
                    if isinstance(r, GateScores)
                    else {
                        "id": c["id"],
                        "blur": 0.0,
                        "contrast": 0.0,
                        "entropy": 0.0,
                        "cloud": 0.0,
                        "error": str(r),
                    }
                    for c, r in zip(chunk, results)
                ]
            )
            bar.update(len(chunk))
        bar.close()
        passed: list[dict[str, Any]] = []
        decisions: dict[str, dict[str, Any]] = {}
        gate_failures: Counter[str] = Counter()
        for c in crops:
            rec = scores[c["id"]]
            if rec["error"]:
                decisions[c["id"]] = {"kept": False, "reason": f"unreadable crop: {rec['error']}"}
                continue
            gate_scores = _gate_scores(rec)
            failed = failed_gates(gate_scores, self.config.gates)
            gate_failures.update(failed)
            if failed:
                detail = failure_reason(gate_scores, self.config.gates)
                decisions[c["id"]] = {"kept": False, "reason": f"quality gate(s) failed: {detail}"}
            else:
                passed.append(c)
        if self.config.dedup.order == "quality":
            passed.sort(key=lambda c: -scores[c["id"]]["blur"])
        else:
            rng = np.random.default_rng(self.config.seed)
            passed = [passed[i] for i in rng.permutation(len(passed))]
        footprints = [Footprint(*c["footprint"]) for c in passed]
        for c, d in zip(passed, deduplicate(footprints, self.config.dedup.max_overlap)):
            if d.kept:
                decisions[c["id"]] = {"kept": True, "reason": ""}
            else:
                assert d.duplicate_of is not None  # deduplicate names the kept crop behind every drop
                dup = passed[d.duplicate_of]["id"]
                decisions[c["id"]] = {
                    "kept": False,
                    "reason": f"duplicate: {100 * d.overlap:.0f}% of its ground overlaps {dup}",
                }
        atomic_write_text(self.work / "clean.json", json.dumps(decisions, indent=0))
        kept = [c for c in crops if decisions[c["id"]]["kept"]]
        return {
            "crops_scored": len(crops),
            "gate_failures": {g: gate_failures.get(g, 0) for g in GATE_NAMES},
            "failed_any_gate": sum(1 for d in decisions.values() if d["reason"].startswith("quality")),
            "duplicates": sum(1 for d in decisions.values() if d["reason"].startswith("duplicate")),
            "kept": len(kept),
            "kept_per_scale": dict(Counter(f"{c['scale_m']:g}" for c in kept)),
        }

    def kept_crops(self) -> list[dict]:
        decisions = json.loads((self.work / "clean.json").read_text())
        scores = self._journal("clean", "id", name="clean-scores")
        out = []
        for c in self.crop_records():
            if c["status"] == "ok" and decisions.get(c["id"], {}).get("kept"):
                s = scores[c["id"]]
                out.append({**c, **_gate_scores(s).to_dict()})
        return out

    # --- stage 4 --------------------------------------------------------------------------------

    def _stage_align(self, summaries) -> dict:
        from PIL import Image

        from geobridge.builder.describe import make_describer
        from geobridge.builder.providers.factory import make_panorama_provider, make_satellite_provider
        from geobridge.builder.providers.images import decode_rgb

        try:
            satellite = make_satellite_provider(self.config.satellite, self.config.http, self.cache_dir)
            panoramas = make_panorama_provider(self.config.panoramas, self.config.http, self.cache_dir)
            describer = make_describer(
                self.config.text, self.config.http, self.cache_dir / "text", self.config.seed
            )
        except ProviderError as err:
            raise BuildError(str(err)) from err
        kept = self.kept_crops()
        journal = self._journal("align", "id")
        street_dir, sat_dir = self.work / "street", self.work / "satellite"
        bar = self._bar(len(kept), "4/4 satellite + street + text")
        for c in kept:
            if c["id"] in journal:
                bar.update()
                continue
            record = {
                "id": c["id"],
                "status": "ok",
                "reason": "",
                "text": "",
                "text_source": "",
                "text_note": "",
            }
            try:
                sat = satellite.fetch(c["lat"], c["lon"], c["scale_m"], self.config.crop.size_px)
                pano_bytes = panoramas.fetch_image(
                    Panorama(c["pano_id"], c["lat"], c["lon"], c["heading"], c["pano_source"], c["provider"])
                )
                pano = decode_rgb(pano_bytes, what=f"panorama {c['pano_id']}", max_side=PANORAMA_MAX_SIDE_PX)
                pano = north_first(pano, c["heading"])
                sat_path, street_path = sat_dir / f"{c['id']}.png", street_dir / f"{c['id']}.png"
                for array, target in ((sat, sat_path), (pano, street_path)):
                    with atomic_path(target) as tmp:
                        Image.fromarray(array).save(tmp, format="PNG")
                images = {
                    "drone": Path(c["path"]).read_bytes(),
                    "street": street_path.read_bytes(),
                    "satellite": sat_path.read_bytes(),
                }
                description = describer.describe(c["lat"], c["lon"], images)
                record.update(
                    satellite=str(sat_path),
                    street=str(street_path),
                    text=description.text,
                    text_source=description.source,
                    text_note=description.note,
                )
            except ProviderError as err:
                record.update(status="skipped", reason=str(err))
            journal.append(record)
            bar.update()
        bar.close()
        records = [journal[c["id"]] for c in kept]
        notes = Counter(r["text_note"] for r in records if r.get("text_note"))
        return {
            "locations": len(kept),
            "aligned": sum(r["status"] == "ok" for r in records),
            "skipped": [{"item": r["id"], "reason": r["reason"]} for r in records if r["status"] != "ok"],
            "text_sources": dict(Counter(r["text_source"] for r in records if r["status"] == "ok")),
            "text_notes": dict(notes),
        }

    # --- export ---------------------------------------------------------------------------------

    def _stage_export(self, summaries) -> dict:
        from geobridge.builder.report import write_report
        from geobridge.records import Location, write_manifest

        align = self._journal("align", "id")
        kept = [c for c in self.kept_crops() if (align.get(c["id"]) or {}).get("status") == "ok"]
        splits = assign_splits([(c["lat"], c["lon"]) for c in kept], self.config.split, self.config.seed)
        locations, wanted = [], set()
        for c, split in zip(kept, splits):
            a = align[c["id"]]
            paths = {}
            for view, source in (
                ("drone", c["path"]),
                ("street", a["street"]),
                ("satellite", a["satellite"]),
            ):
                target = self.out / split / view / f"{c['id']}.png"
                _copy_if_changed(Path(source), target)
                wanted.add(target)
                paths[view] = target
            extra = {
                k: c[k]
                for k in ("scale_m", "pano_id", "heading", "gsd_m", "blur", "contrast", "entropy", "cloud")
            }
            extra.update(
                orthomosaic=Path(c["orthomosaic"]).name, provider=c["provider"], text_source=a["text_source"]
            )
            locations.append(
                Location(
                    id=c["id"],
                    lat=c["lat"],
                    lon=c["lon"],
                    split=split,
                    region="",
                    text=a["text"],
                    paths=paths,
                    extra=extra,
                )
            )
        _remove_stale(self.out, wanted)
        for split in ("train", "val", "test"):
            rows = [loc for loc in locations if loc.split == split]
            if rows or (self.out / split).exists():
                write_text_csv(self.out / split / "text.csv", rows)
        manifest = write_manifest(locations, self.out / "manifest.parquet")
        summary = {
            "locations": len(locations),
            "per_split": dict(Counter(splits)),
            "per_scale": dict(Counter(f"{c['scale_m']:g}" for c in kept)),
            "manifest": str(manifest),
        }
        write_report(
            self.out, {**summaries, "export": summary}, locations, samples=self.config.report_samples
        )
        return summary


def north_first(pano: np.ndarray, heading_deg: float) -> np.ndarray:
    """Roll an equirectangular panorama whose first column faces ``heading_deg`` so that it faces north."""
    width = pano.shape[1]
    shift = int(round((heading_deg % 360.0) / 360.0 * width)) % width
    return np.roll(pano, shift, axis=1) if shift else pano


def assign_splits(points: list[tuple[float, float]], settings, seed: int) -> list[str]:
    """train / val / test per location by spatial block (neighbours share a split: no leakage)."""
    from geobridge.geo import LocalProjection

    if not points:
        return []
    proj = LocalProjection(points[0][0], points[0][1])
    out = []
    for lat, lon in points:
        east, north = proj.to_xy(lat, lon)
        block = (int(np.floor(east / settings.block_m)), int(np.floor(north / settings.block_m)))
        digest = hashlib.sha256(f"{seed}:{block[0]}:{block[1]}".encode()).digest()
        u = int.from_bytes(digest[:8], "little") / 2**64
        out.append("test" if u < settings.test else "val" if u < settings.test + settings.val else "train")
    return out


def _gate_scores(record: dict) -> GateScores:
    """The gate scores journalled for a crop (journals written before the cloud gate lack it)."""
    return GateScores(record["blur"], record["contrast"], record["entropy"], record.get("cloud", 0.0))


def _copy_if_changed(source: Path, target: Path) -> None:
    if (
        target.exists()
        and target.stat().st_size == source.stat().st_size
        and target.read_bytes() == source.read_bytes()
    ):
        return
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _remove_stale(out: Path, wanted: set[Path]) -> None:
    """Delete layout images this build wrote earlier that no longer belong (e.g. new splits)."""
    for split in ("train", "val", "test"):
        for view in TRIPLE_VIEWS:
            folder = out / split / view
            if folder.is_dir():
                for f in folder.glob("*.png"):
                    if f not in wanted:
                        f.unlink()


def write_text_csv(path: Path, locations) -> None:
    """``text.csv`` of one split: id, text, lat, lon (the GeoLoc text file plus coordinates)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "lat", "lon"])
    for loc in locations:
        writer.writerow([loc.id, loc.text, f"{loc.lat:.8f}", f"{loc.lon:.8f}"])
    atomic_write_text(path, buffer.getvalue())


def run_build(config: BuildConfig, progress: bool = True) -> BuildResult:
    """Run (or resume) a build; see the module docstring."""
    return Build(config, progress=progress).run()
