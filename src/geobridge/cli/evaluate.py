"""The `geobridge evaluate` command: score embeddings files, or a model on a benchmark, under a
named protocol, print a table and write JSON / Markdown / PNG / HTML reports.

    geobridge evaluate --query q.npz --gallery g.npz --protocol u1652 --json report.json
    geobridge evaluate --model demo/model --dataset world --root demo/data --directions all
    geobridge evaluate --model demo/model --dataset vigor --root /data/VIGOR --option mode=same --html ex.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from geobridge.cli.errors import fail
from geobridge.cli.run_options import checked_device, device_option, precision_option, workers_option

if TYPE_CHECKING:  # the CLI imports its heavy modules only when a command runs
    from geobridge.embeddings import Embeddings
    from geobridge.evaluation.protocols import EvaluationResult


def _names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def _protocol_names() -> str:
    """The registered protocols, for help and errors (read from the registry, not written here)."""
    from geobridge.evaluation.protocols import list_protocols

    return _names(list_protocols())


def _dataset_names() -> str:
    """The registered benchmark loaders, for help."""
    from geobridge.data.benchmarks import list_benchmarks

    return ", ".join(list_benchmarks())


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    query: Optional[Path] = typer.Option(
        None, "--query", help="Query embeddings .npz (emb, ids[, lat, lon, paths])."
    ),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="Gallery embeddings .npz."),
    protocol: Optional[str] = typer.Option(
        None,
        "--protocol",
        help=f"{_protocol_names()} (required with --query; with --dataset the benchmark's default).",
    ),
    model: Optional[Path] = typer.Option(
        None, "--model", help="Saved model folder, to embed and evaluate a benchmark."
    ),
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help=f"Benchmark name: {_dataset_names()}.",
    ),
    root: Optional[Path] = typer.Option(None, "--root", help="The benchmark's root folder."),
    directions: str = typer.Option(
        "all", "--directions", help="Directions to evaluate, e.g. 'D2S,S2D', or 'all'."
    ),
    loader_option: Optional[list[str]] = typer.Option(
        None,
        "--option",
        metavar="KEY=VALUE",
        help="Repeatable. --model mode: a dataset loader option, e.g. --option mode=same (vigor: same-area) "
        "--option altitude=200 (sues200) --option split=train. --query mode: a protocol option, e.g. --option "
        "top_k=5, --option radii_m=25,50 (vigor, geobridge), --option rerank=20,6,0.3 (u1652). Each value is "
        "converted by the option's declared type (true/false, a number, a comma-separated list, text, null); "
        "an unknown key or a wrong value is an error that lists the options and their types.",
    ),
    tta: Optional[str] = typer.Option(None, "--tta", help="Test-time augmentation: 'flip'."),
    batch_size: int = typer.Option(
        32, "--batch-size", min=1, help="Images per embedding batch (--model mode)."
    ),
    semi_positives: Optional[Path] = typer.Option(
        None,
        "--semi-positives",
        help="vigor: JSON list with one list of semi-positive gallery ids per query row "
        "(or the older mapping query id -> ids, refused when an id repeats with different lists). A query .npz "
        "with a 'semi_positives' array needs no file.",
    ),
    match_by: Optional[str] = typer.Option(
        None, "--match-by", help="geobridge: match query and gallery by 'id' or file-name 'stem'."
    ),
    chunk_size: Optional[int] = typer.Option(
        None, "--chunk-size", min=1, help="Queries scored per block (default: ~128 MB blocks)."
    ),
    multi_query: bool = typer.Option(
        False,
        "--multi-query",
        help="u1652 protocols, --query mode: fuse the queries of one label into one "
        "(layumi's multi-query test). With --dataset university1652 use --option multi_query=true.",
    ),
    rerank: bool = typer.Option(
        False,
        "--rerank",
        help="u1652 protocols, --query mode: k-reciprocal re-ranking (k1=20, k2=6, "
        "lambda=0.3). With --dataset university1652 use --option rerank=true.",
    ),
    published: Optional[str] = typer.Option(
        None,
        "--published",
        metavar="NAME",
        help="Print ours beside a checkpoint's published numbers (e.g. sample4geo-u1652; see "
        "geobridge/evaluation/published.csv) and the difference (--model mode).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    markdown_out: Optional[Path] = typer.Option(
        None, "--markdown", help="Write the results as a Markdown table."
    ),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write recall@K curves as a PNG."),
    html_out: Optional[Path] = typer.Option(
        None,
        "--html",
        help="Write a self-contained HTML page of example queries with their top-5 (npz mode needs 'paths'; "
        "--model mode shows each direction, texts where there is no image).",
    ),
    per_query: bool = typer.Option(
        False, "--per-query", help="Include per-query ranks and top-10 lists in the JSON."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    device: str = device_option(),
    precision: str = precision_option(),
    workers: Optional[int] = workers_option(),
) -> None:
    """Evaluate retrieval under a benchmark's exact protocol; every metric in percent.

    With --model/--dataset, give the dataset loader's own options with --option KEY=VALUE, e.g. --dataset vigor --option mode=same, or --dataset sues200 --option altitude=200; with --query/--gallery, --option sets the protocol's options, e.g. --option top_k=5.
    """
    from geobridge.embeddings import EmbeddingsFileError
    from geobridge.evaluation.protocols import EvaluationError

    npz_mode = query is not None or gallery is not None
    model_mode = model is not None or dataset is not None
    if npz_mode == model_mode:
        raise fail(
            "give either --query Q.npz --gallery G.npz --protocol NAME, or --model DIR --dataset NAME --root PATH"
        )
    if model_mode and (multi_query or rerank):
        raise fail(
            "--multi-query and --rerank apply to --query/--gallery; with --dataset university1652 give "
            "--option multi_query=true / --option rerank=true"
        )
    if published is not None:
        _check_published(published, dataset)
    # an OSError (missing or unwritable file) is reported by the app's one error path
    user_errors: tuple[type[BaseException], ...] = (EvaluationError, EmbeddingsFileError, ValueError)
    try:
        if npz_mode:
            results, embeddings = _evaluate_files(
                query,
                gallery,
                protocol,
                semi_positives,
                match_by,
                chunk_size,
                quiet,
                multi_query,
                rerank,
                loader_option or [],
            )
        else:
            run = {
                "device": checked_device(device, precision),
                "precision": precision,
                "num_workers": workers,
            }
            results = _evaluate_model(
                model, dataset, root, directions, protocol, tta, batch_size, quiet, loader_option or [], run
            )
            embeddings = None
        _print_table(results, dataset)
        if published is not None:
            assert dataset is not None  # _check_published required it
            _print_published(results, dataset, published)
        _write_reports(results, embeddings, json_out, markdown_out, plot_out, html_out, per_query, dataset)
    except user_errors as err:
        raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def _evaluate_files(
    query: Path | None,
    gallery: Path | None,
    protocol: str | None,
    semi_positives: Path | None,
    match_by: str | None,
    chunk_size: int | None,
    quiet: bool,
    multi_query: bool = False,
    rerank: bool = False,
    option_texts: list[str] | None = None,
) -> tuple[dict[str, EvaluationResult], dict[str, tuple[Embeddings, Embeddings]]]:
    from geobridge.embeddings import Embeddings
    from geobridge.evaluation.protocols import evaluate

    if query is None or gallery is None:
        raise fail("both --query and --gallery are needed")
    if protocol is None:
        raise fail(f"--protocol is required with --query/--gallery: {_protocol_names()}")
    given = parse_protocol_options(protocol, option_texts or [])
    options: dict[str, Any] = {"chunk_size": chunk_size, "progress": not quiet}
    if semi_positives is not None:
        if protocol != "vigor":
            raise fail("--semi-positives only applies to --protocol vigor")
        options["semi_positives"] = _read_semi_positives(semi_positives)
    if match_by is not None:
        if protocol != "geobridge":
            raise fail("--match-by only applies to --protocol geobridge")
        options["match_by"] = match_by
    if multi_query:
        options["multi_query"] = True  # protocols other than u1652 refuse it, naming it
    if rerank:
        options["rerank"] = True
    flags = {
        "chunk_size": "--chunk-size",
        "match_by": "--match-by",
        "multi_query": "--multi-query",
        "rerank": "--rerank",
    }
    for key, value in given.items():
        if key in flags and options.get(key) not in (None, False):
            raise fail(f"--option {key} and {flags[key]} set the same option: give it once")
        options[key] = value
    q, g = Embeddings.load(query), Embeddings.load(gallery)
    result = evaluate(q, g, protocol, **options)
    if "query_row" in result.per_query:  # multi-query: the fused queries, shown by their first item
        rows = result.per_query["query_row"]
        q = Embeddings(q.emb[rows], q.ids[rows], paths=None if q.paths is None else q.paths[rows])
    return {f"{query.stem}->{gallery.stem}": result}, {f"{query.stem}->{gallery.stem}": (q, g)}


def _read_semi_positives(path: Path) -> list[list[str]] | dict[str, list[str]]:
    """A JSON list aligned with the query rows (one list of gallery ids per row), or the older
    object keyed by query id; an object that repeats a key with different lists is refused
    (two panoramas with the same positive but different semi-positives cannot share a key)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out and out[key] != value:
                raise fail(
                    f"{path}: query id {key!r} appears twice with different semi-positive lists; a mapping keyed "
                    "by query id cannot tell those queries apart: write a JSON list with one list per query row, "
                    "or a 'semi_positives' array in the query .npz"
                )
            out[key] = value
        return out

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    except FileNotFoundError:
        raise fail(f"semi-positives file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise fail(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if isinstance(data, list) and all(isinstance(v, list) for v in data):
        return [[str(x) for x in v] for v in data]
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {str(k): [str(x) for x in v] for k, v in data.items()}
    raise fail(
        f"{path} must hold a JSON list with one list of gallery ids per query row "
        "(or an object mapping each query id to a list of gallery ids)"
    )


def _evaluate_model(model, dataset, root, directions, protocol, tta, batch_size, quiet, option_texts, run):
    """``run``: the embedding engine's ``device``, ``precision`` and ``num_workers``."""
    if model is None or dataset is None or root is None:
        raise fail("--model, --dataset and --root are all needed to evaluate a model on a benchmark")
    loader_options = parse_loader_options(dataset, option_texts)
    if not model.is_dir():
        raise fail(f"model folder {model} not found: pass a saved model (config.json + model.safetensors)")
    if tta not in (None, "flip"):
        raise fail(f"unknown --tta {tta!r}: the only test-time augmentation is 'flip'")
    try:
        from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
        from geobridge.models import load_model
    except ImportError as err:
        raise fail(f"model evaluation is unavailable in this installation ({err})") from None
    loaded = load_model(model, device=run["device"])
    return evaluate_model_on_dataset(
        loaded,
        dataset,
        root,
        directions=directions,
        protocol=protocol,
        tta=tta,
        batch_size=batch_size,
        progress=not quiet,
        precision=run["precision"],
        num_workers=run["num_workers"],
        loader_options=loader_options,
    )


def parse_loader_options(dataset: str, option_texts: list[str]) -> dict[str, Any]:
    """``["mode=same", "altitude=200"]`` -> the loader's keyword options, each converted by the
    type the loader registered as ``dataset`` declares for it (its ``__init__`` annotations),
    before any model is loaded: see :mod:`geobridge.cli.option_values`. A text-typed option
    keeps the text as written (a regex, ``split=2019``); ``null`` is None where None is allowed.
    Unknown keys, malformed items, repeats and values of the wrong type are user errors.
    """
    from geobridge.cli.option_values import declared_types, parse_option_texts
    from geobridge.data.benchmarks import benchmark_class

    try:
        loader = benchmark_class(dataset)
        return parse_option_texts(option_texts, declared_types(loader.__init__), "dataset", loader.name)
    except ValueError as err:
        raise fail(str(err)) from None


#: protocol options that --option does not set, and the flag that does
_PROTOCOL_OPTION_FLAGS = {
    "progress": "set by --quiet (progress bars are on without it)",
    "semi_positives": "give a JSON file with --semi-positives FILE",
}


def parse_protocol_options(protocol: str, option_texts: list[str]) -> dict[str, Any]:
    """``["top_k=5", "rerank=20,6,0.3"]`` -> the protocol's options (``--query`` mode), each
    converted by the field type of the protocol's options dataclass (``U1652Options``,
    ``VigorOptions``, ...). Unknown keys and values of the wrong type are user errors that name
    the key, the protocol's options and their types."""
    from geobridge.cli.option_values import declared_types, parse_option_texts
    from geobridge.evaluation.protocols import get_protocol

    try:
        spec = get_protocol(protocol)
        return parse_option_texts(
            option_texts, declared_types(spec.options), "protocol", spec.name, skip=_PROTOCOL_OPTION_FLAGS
        )
    except ValueError as err:
        message = str(err)
        if " has no option " in message:  # maybe a dataset loader's option, such as mode=same
            message += "; a dataset loader's option: use it with --model/--dataset"
        raise fail(message) from None


def _print_table(results, dataset: str | None = None) -> None:
    """The metrics as a console table; the dataset names the table once, so the per-direction
    provenance notes (kept in the JSON report) are not repeated under it."""
    from rich.console import Console
    from rich.table import Table

    from geobridge.evaluation.report import is_distance_metric
    from geobridge.evaluation.run_dataset import provenance_note

    keys: list[str] = []
    for result in results.values():
        keys.extend(k for k in result.metrics if k not in keys)
    protocols = sorted({r.protocol for r in results.values()})
    table = Table(title=(f"dataset: {dataset}, " if dataset else "") + f"protocol: {', '.join(protocols)}")
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
            if dataset and note == provenance_note(dataset, name):
                continue
            console.print(f"[dim]note ({name}): {note}[/dim]")


def _write_reports(
    results, embeddings, json_out, markdown_out, plot_out, html_out, per_query, dataset=None
) -> None:
    from geobridge.atomic import atomic_write_text
    from geobridge.evaluation.protocols import good_items
    from geobridge.evaluation.report import (
        markdown_table,
        plot_recall_curves,
        write_html_examples,
        write_report_json,
    )

    single = next(iter(results.values())) if len(results) == 1 and embeddings is not None else None
    if json_out is not None:
        write_report_json(single if single is not None else results, json_out, include_per_query=per_query)
    if markdown_out is not None:
        atomic_write_text(markdown_out, markdown_table(results))
    if plot_out is not None:
        plot_recall_curves(results, plot_out)
    if html_out is not None:
        if embeddings is None:
            _write_dataset_html(results, html_out, title=f"{dataset}: example queries")
            return
        for name, (q, g) in embeddings.items():
            if q.paths is None or g.paths is None:
                raise fail("--html needs 'paths' in both the query and the gallery .npz")
            result = results[name]
            write_html_examples(
                q.paths,
                g.paths,
                result.per_query["top_indices"],
                good_items(result, list(q.ids), list(g.ids)),
                html_out,
                ranks=result.per_query["rank"],
                query_ids=q.ids,
                gallery_ids=g.ids,
                title=f"{name}: example queries ({result.protocol})",
                subtitle=f"R@1 {result.metrics.get('R@1', float('nan')):.2f}%, {result.n_query} queries, {result.n_gallery} gallery items.",
            )


def _write_dataset_html(results, html_out: Path, title: str) -> None:
    """One page, a section per direction, from the items each :class:`DatasetResult` carries;
    text items (e.g. GeoText-1652 queries) show their text instead of an image."""
    from geobridge.evaluation.protocols import good_items
    from geobridge.evaluation.report import html_examples_section, write_html_sections

    sections: dict[str, str] = {}
    for name, result in results.items():
        q, g = result.query_items, result.gallery_items
        sections[f"{name} ({result.protocol})"] = html_examples_section(
            q.paths,
            g.paths,
            result.per_query["top_indices"],
            good_items(result, list(q.ids), list(g.ids)),
            page_dir=html_out.parent,
            ranks=result.per_query["rank"],
            query_ids=q.ids,
            gallery_ids=g.ids,
            query_texts=q.texts,
            gallery_texts=g.texts,
            subtitle=f"R@1 {result.metrics.get('R@1', float('nan')):.2f}%, {result.n_query} queries, {result.n_gallery} gallery items.",
        )
    write_html_sections(sections, html_out, title=title)


def _check_published(name: str, dataset: str | None) -> None:
    """--published needs --dataset, and a checkpoint with rows for it: checked before any embedding."""
    from geobridge.evaluation.published import rows_for

    if dataset is None:
        raise fail("--published compares a model on a benchmark: use it with --model/--dataset/--root")
    try:
        benchmarks = {row.benchmark for row in rows_for(name)}
    except ValueError as err:
        raise fail(str(err)) from None
    if dataset not in benchmarks:
        raise fail(f"{name!r} has published numbers for {', '.join(sorted(benchmarks))}, not for {dataset!r}")


def _print_published(results, dataset: str, name: str) -> None:
    """Ours beside the published figure and the difference (ours - published), per direction and metric."""
    from rich.console import Console
    from rich.table import Table

    from geobridge.evaluation.published import compare, rows_for

    ours = {direction: result.metrics for direction, result in results.items()}
    rows = [row for row in rows_for(name) if row.benchmark == dataset]
    table = Table(title=f"published: {name} on {dataset} ({rows[0].method}; {rows[0].source})")
    for column in ("direction", "metric", "ours", "published", "difference"):
        table.add_column(column, justify="left" if column in ("direction", "metric") else "right")
    for entry in compare(name, dataset, ours):
        mine = "–" if entry.ours is None else f"{entry.ours:.2f}"
        diff = "–" if entry.difference is None else f"{entry.difference:+.2f}"
        table.add_row(entry.direction, entry.metric, mine, f"{entry.published:.2f}", diff)
    console = Console(width=110)
    console.print(table)
    for row in rows:
        ran = results.get(row.direction)
        protocol = ran.protocol if ran is not None else "not run"
        console.print(
            f"[dim]{row.direction}: published with protocol {row.protocol}, gallery {row.gallery}; "
            f"ours: {protocol}. {row.note}[/dim]"
        )
