"""The `geobridge explain` commands (GLEAM-X): explain one satellite/query pair, or evaluate the
explainer's verdicts on matching and non-matching pairs from a world manifest.

    geobridge explain --satellite sat.png --query drone.png --view drone [--model DIR] [--lang zh] [--json]
    geobridge explain eval --manifest world/manifest.parquet --split test --view drone --pairs 40
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail
from geobridge.cli.run_options import checked_device, device_option

explain_app = typer.Typer(
    name="explain",
    help="GLEAM-X: decide whether a satellite image and a drone/street/map/ground query show one place, and explain why.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.add_typer(explain_app, name="explain")


def _llm_client(llm_url: Optional[str], llm_model: Optional[str], llm_cache: Optional[Path]):
    if llm_url is None:
        return None
    if not llm_model:
        raise fail("--llm-url needs --llm-model NAME (the model id the endpoint serves)")
    from geobridge.explain.llm import LLMClient, LLMConfig

    return LLMClient(LLMConfig(base_url=llm_url, model=llm_model, cache_dir=llm_cache))


@explain_app.callback()
def explain_pair(
    ctx: typer.Context,
    satellite: Optional[Path] = typer.Option(None, "--satellite", help="The satellite image (PNG/JPEG)."),
    query: Optional[Path] = typer.Option(None, "--query", help="The query image of another view."),
    view: str = typer.Option("drone", "--view", help="The query's view: drone, street, map or ground."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="Saved geobridge model folder (verdict from its similarity)."
    ),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="Calibration JSON (default: the one beside --model)."
    ),
    lang: str = typer.Option("en", "--lang", help="Language of the explanation: en or zh."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    llm_url: Optional[str] = typer.Option(
        None, "--llm-url", help="OpenAI-compatible endpoint (…/v1); key from $GEOBRIDGE_LLM_API_KEY."
    ),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="Model name at --llm-url."),
    llm_cache: Optional[Path] = typer.Option(
        None, "--llm-cache", help="Folder caching the language model's answers."
    ),
    device: str = device_option(),
) -> None:
    """Explain one pair: a paragraph ending with the verdict (or JSON with --json)."""
    if ctx.invoked_subcommand is not None:
        return
    if satellite is None or query is None:
        raise fail(
            "give --satellite SAT.png --query Q.png --view drone|street|map|ground (or use `geobridge explain eval`)"
        )
    if lang not in ("en", "zh"):
        raise fail(f"--lang must be en or zh, got {lang!r}")
    for name, path in (("--satellite", satellite), ("--query", query)):
        if not path.is_file():
            raise fail(f"{name} image not found: {path}")
    if model is not None and not model.is_dir():
        raise fail(f"--model folder not found: {model}")
    checked_device(device)
    from geobridge.explain.explainer import load_explainer
    from geobridge.explain.llm import LLMError

    try:
        explainer = load_explainer(
            model, calibration, llm=_llm_client(llm_url, llm_model, llm_cache), device=device
        )
        result = explainer.explain(satellite, query, view, lang=lang)
    except (ValueError, OSError, LLMError) as err:
        raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(result.text)


@explain_app.command("eval")
def explain_eval(
    manifest: Path = typer.Option(..., "--manifest", help="World manifest (manifest.parquet or its folder)."),
    split: str = typer.Option("test", "--split", help="Split whose locations form the pairs."),
    view: str = typer.Option("drone", "--view", help="Query view: drone, street, map or ground."),
    model: Optional[Path] = typer.Option(None, "--model", help="Saved geobridge model folder."),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="Calibration JSON (default: beside --model)."
    ),
    fit_split: Optional[str] = typer.Option(
        None, "--fit-split", help="Fit the calibration on pairs of this split first (e.g. val)."
    ),
    save_calibration: Optional[Path] = typer.Option(
        None, "--save-calibration", help="Write the fitted calibration JSON here."
    ),
    pairs: Optional[int] = typer.Option(
        None, "--pairs", min=2, help="At most this many pairs (half matching)."
    ),
    lang: str = typer.Option("en", "--lang", help="Language of the explanations: en or zh."),
    seed: int = typer.Option(0, "--seed", help="Seed for drawing non-matching pairs."),
    negatives: str = typer.Option(
        "random",
        "--negatives",
        help="Non-matching pairs: random (any other place of the split) or nearest (one of the 5 "
        "places closest on the ground: hard negatives).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    device: str = device_option(),
) -> None:
    """Verdict accuracy and self-consistency on matching / non-matching pairs from a manifest."""
    if lang not in ("en", "zh"):
        raise fail(f"--lang must be en or zh, got {lang!r}")
    if model is not None and not model.is_dir():
        raise fail(f"--model folder not found: {model}")
    if save_calibration is not None and fit_split is None:
        raise fail("--save-calibration needs --fit-split SPLIT to fit one")
    checked_device(device)
    from geobridge.atomic import atomic_write_text
    from geobridge.explain.evaluate import evaluate_pairs, fit_calibration
    from geobridge.explain.explainer import Explainer, load_explainer
    from geobridge.explain.pairs import build_pairs
    from geobridge.records import ManifestError, read_manifest

    try:
        explainer = load_explainer(model, calibration, device=device)
        test_locations = read_manifest(manifest, split=split)
        if not test_locations:
            raise ValueError(f"split {split!r} of {manifest} has no locations")
        test_pairs = build_pairs(test_locations, view, n_pairs=pairs, seed=seed, negatives=negatives)
        fitted = None
        if fit_split is not None:
            fit_locations = read_manifest(manifest, split=fit_split)
            fitted = fit_calibration(
                explainer,
                build_pairs(fit_locations, view, seed=seed + 1, negatives=negatives),
                progress=not quiet,
            )
            explainer = Explainer(model=explainer.model, calibration=fitted)
            if save_calibration is not None:
                fitted.save(save_calibration)
        result = evaluate_pairs(explainer, test_pairs, lang=lang, progress=not quiet)
    except (ManifestError, ValueError, OSError) as err:
        raise fail(str(err).splitlines()[0]) from None
    report = {"view": view, "split": split, **result.to_dict()}
    if fitted is not None:
        report["calibration"] = {
            "fit_split": fit_split,
            "threshold": fitted.threshold,
            "temperature": fitted.temperature,
            "fit_accuracy": fitted.accuracy,
        }
    typer.echo(
        f"{view} vs satellite, {split} split, {result.n_pairs} pairs ({result.score_kind} score, threshold "
        f"{result.threshold:.3f}): verdict accuracy {100 * result.accuracy:.1f}%, self-consistency "
        f"{100 * result.self_consistency:.1f}%, mean p(match) {result.mean_probability_match:.2f} on matching / "
        f"{result.mean_probability_mismatch:.2f} on non-matching pairs"
    )
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(report, indent=2) + "\n")
