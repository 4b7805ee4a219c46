"""The `geobridge evaluate` command: score embeddings files, or a model on a benchmark, under a
named protocol, print a table and write JSON / Markdown / PNG / HTML reports.

    geobridge evaluate --query q.npz --gallery g.npz --protocol u1652 --json report.json
    geobridge evaluate --model demo/model --dataset world --root demo/data --directions all
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from geobridge.cli.errors import fail


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    query: Optional[Path] = typer.Option(None, "--query", help="Query embeddings .npz (emb, ids[, lat, lon, paths])."),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="Gallery embeddings .npz."),
    protocol: Optional[str] = typer.Option(
        None, "--protocol", help="u1652, u1652-s4g, pairs, vigor or geobridge (required with --query; with --dataset the benchmark's default)."
    ),
    model: Optional[Path] = typer.Option(None, "--model", help="Saved model folder, to embed and evaluate a benchmark."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Benchmark name: world, geoloc, university1652, cvusa, cvact, vigor, sues200, geotext1652."),
    root: Optional[Path] = typer.Option(None, "--root", help="The benchmark's root folder."),
    directions: str = typer.Option("all", "--directions", help="Directions to evaluate, e.g. 'D2S,S2D', or 'all'."),
    tta: Optional[str] = typer.Option(None, "--tta", help="Test-time augmentation: 'flip'."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per embedding batch (--model mode)."),
    semi_positives: Optional[Path] = typer.Option(
        None, "--semi-positives", help="vigor: JSON file mapping each query id to its semi-positive gallery ids."
    ),
    match_by: Optional[str] = typer.Option(None, "--match-by", help="geobridge: match query and gallery by 'id' or file-name 'stem'."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", min=1, help="Queries scored per block (default: ~128 MB blocks)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the results as a Markdown table."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write recall@K curves as a PNG."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write an HTML page of example queries with their top-5 (needs image paths)."),
    per_query: bool = typer.Option(False, "--per-query", help="Include per-query ranks and top-10 lists in the JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Evaluate retrieval under a benchmark's exact protocol; every metric in percent."""
    from geobridge.embeddings import EmbeddingsFileError
    from geobridge.evaluation.protocols import EvaluationError

    npz_mode = query is not None or gallery is not None
    model_mode = model is not None or dataset is not None
    if npz_mode == model_mode:
        raise fail("give either --query Q.npz --gallery G.npz --protocol NAME, or --model DIR --dataset NAME --root PATH")
    user_errors: tuple[type[BaseException], ...] = (EvaluationError, EmbeddingsFileError, ValueError, OSError)
    try:
        if npz_mode:
            results, embeddings = _evaluate_files(query, gallery, protocol, semi_positives, match_by, chunk_size, quiet)
        else:
            results, embeddings = _evaluate_model(model, dataset, root, directions, protocol, tta, batch_size, quiet), None
        _print_table(results)
        _write_reports(results, embeddings, json_out, markdown_out, plot_out, html_out, per_query)
    except user_errors as err:
        raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def _evaluate_files(query, gallery, protocol, semi_positives, match_by, chunk_size, quiet):
    from geobridge.embeddings import Embeddings
    from geobridge.evaluation.protocols import evaluate

    if query is None or gallery is None:
        raise fail("both --query and --gallery are needed")
    if protocol is None:
        raise fail("--protocol is required with --query/--gallery: u1652, u1652-s4g, pairs, vigor or geobridge")
    options: dict[str, Any] = {"chunk_size": chunk_size, "progress": not quiet}
    if semi_positives is not None:
        if protocol != "vigor":
            raise fail("--semi-positives only applies to --protocol vigor")
        options["semi_positives"] = _read_semi_positives(semi_positives)
    if match_by is not None:
        if protocol != "geobridge":
            raise fail("--match-by only applies to --protocol geobridge")
        options["match_by"] = match_by
    q, g = Embeddings.load(query), Embeddings.load(gallery)
    result = evaluate(q, g, protocol, **options)
    return {f"{query.stem}->{gallery.stem}": result}, {f"{query.stem}->{gallery.stem}": (q, g)}


def _read_semi_positives(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(f"semi-positives file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise fail(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise fail(f"{path} must hold a JSON object mapping each query id to a list of gallery ids")
    return {str(k): [str(x) for x in v] for k, v in data.items()}


def _evaluate_model(model, dataset, root, directions, protocol, tta, batch_size, quiet):
    if model is None or dataset is None or root is None:
        raise fail("--model, --dataset and --root are all needed to evaluate a model on a benchmark")
    if not model.is_dir():
        raise fail(f"model folder {model} not found: pass a saved model (config.json + model.safetensors)")
    if tta not in (None, "flip"):
        raise fail(f"unknown --tta {tta!r}: the only test-time augmentation is 'flip'")
    try:
        from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
        from geobridge.models import load_model
    except ImportError as err:
        raise fail(f"model evaluation is unavailable in this installation ({err})") from None
    loaded = load_model(model)
    return evaluate_model_on_dataset(
        loaded, dataset, root, directions=directions, protocol=protocol, tta=tta, batch_size=batch_size, progress=not quiet
    )


def _print_table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    from geobridge.evaluation.report import is_distance_metric

    keys: list[str] = []
    for result in results.values():
        keys.extend(k for k in result.metrics if k not in keys)
    protocols = sorted({r.protocol for r in results.values()})
    table = Table(title=f"protocol: {', '.join(protocols)}")
    for column in ("direction", "protocol", "queries", "gallery"):
        table.add_column(column)
    for key in keys:
        table.add_column(key, justify="right")
    for name, result in results.items():
        cells = []
        for key in keys:
            value = result.metrics.get(key)
            if value is None:
                cells.append("–")
            elif is_distance_metric(key):
                cells.append(f"{value:.3f} km" if key.endswith("_km") else f"{value:.1f} m")
            else:
                cells.append(f"{value:.2f}%")
        table.add_row(name, result.protocol, str(result.n_query), str(result.n_gallery), *cells)
    console = Console(width=max(100, 14 * (len(keys) + 4)))
    console.print(table)
    for name, result in results.items():
        for note in result.notes:
            console.print(f"[dim]note ({name}): {note}[/dim]")


def _write_reports(results, embeddings, json_out, markdown_out, plot_out, html_out, per_query) -> None:
    from geobridge.atomic import atomic_write_text
    from geobridge.evaluation.report import markdown_table, plot_recall_curves, write_html_examples, write_report_json

    single = next(iter(results.values())) if len(results) == 1 and embeddings is not None else None
    if json_out is not None:
        write_report_json(single if single is not None else results, json_out, include_per_query=per_query)
    if markdown_out is not None:
        atomic_write_text(markdown_out, markdown_table(results))
    if plot_out is not None:
        plot_recall_curves(results, plot_out)
    if html_out is not None:
        if embeddings is None:
            raise fail("--html needs image paths: use it with --query/--gallery files that hold 'paths'")
        for name, (q, g) in embeddings.items():
            if q.paths is None or g.paths is None:
                raise fail("--html needs 'paths' in both the query and the gallery .npz")
            result = results[name]
            write_html_examples(
                q.paths, g.paths, result.per_query["top_indices"], _truth_for_page(result, q, g), html_out,
                ranks=result.per_query["rank"], query_ids=q.ids, gallery_ids=g.ids,
                title=f"{name}: example queries ({result.protocol})",
                subtitle=f"R@1 {result.metrics.get('R@1', float('nan')):.2f}%, {result.n_query} queries, {result.n_gallery} gallery items.",
            )


def _truth_for_page(result, query, gallery):
    """Good gallery items per query: every same-label item for u1652, else the positive."""
    if not result.protocol.startswith("u1652"):
        return result.per_query["positive_index"]
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(gallery.ids.tolist()):
        by_label.setdefault(label, []).append(index)
    return [set(by_label.get(label, ())) if label != "-1" else set() for label in query.ids.tolist()]
