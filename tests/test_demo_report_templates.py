"""The demo's report is one value (:class:`~geobridge.demo.DemoReport`) rendered by two templates:
the Markdown `geobridge demo` prints and ``OUT/report.html``. Built here by hand, no training."""

from __future__ import annotations

import re

from geobridge.demo import (
    DemoNumbers,
    DemoReport,
    ExampleLink,
    RecallCurve,
    build_report,
    format_cell,
    render_html,
    render_markdown,
)


def row(r1: float, gallery: int = 80) -> dict[str, float]:
    return {"R@1": r1, "R@5": r1 + 10, "R@10": r1 + 20, "R@1%": r1, "AP": r1 + 5.25, "gallery": gallery}


def hand_made_report(findings: list[str]) -> DemoReport:
    metrics = {"P2D": row(12.5), "T2S": row(33.333)}
    numbers = DemoNumbers(
        metrics=metrics,
        ablation={"image-only": {"P2D": row(3.0)}, "geobridge": metrics},
        ablation_val={"geobridge": {"P2D": row(41.0)}},
        findings=findings,
    )
    return build_report(
        numbers,
        curves=[RecallCurve("geobridge", "recall_geobridge.png")],
        examples=[ExampleLink("P2D", "examples_P2D.html", 12.5)],
        seconds={"world": 2.4, "train geobridge": 61.6, "total": 70.0},
    )


def numbers_in(text: str) -> list[str]:
    return re.findall(r"\d+\.\d\d\b", text)


def test_markdown_and_html_show_the_same_numbers() -> None:
    report = hand_made_report(["P2D: geobridge R@1 12.50 vs image-only 3.00 -> fused better"])
    markdown, page = render_markdown(report), render_html(report)

    assert "| P2D | 12.50 | 22.50 | 32.50 | 12.50 | 17.75 | 80 | 1.25 |" in markdown
    assert "<tr><td>P2D</td><td>12.50</td><td>22.50</td><td>32.50</td><td>12.50</td><td>17.75</td>" in page
    assert "| T2S | 33.33 |" in markdown and "<td>33.33</td>" in page
    # every table cell of the Markdown is a cell of the HTML, in the same order
    cells = [
        format_cell(value) for table in (report.metrics, report.ablation) for r in table.rows for value in r
    ]
    assert re.findall(r"<td>(.*?)</td>", page) == cells
    for cell in cells:
        assert f"| {cell} |" in markdown
    # the Markdown also prints the val table; otherwise the two hold the same numbers
    val_cells = [format_cell(value) for r in report.ablation_val.rows for value in r]
    assert "41.00" in val_cells and "41.00" in markdown and "41.00" not in page
    body = page.split("</p>", 1)[1]  # after the protocol paragraph (its "0.01 N" is prose)
    assert set(numbers_in(body)) <= set(numbers_in(markdown))
    assert "4.90" in markdown and "4.90" in page  # the paper's image-only P2D beside this world's
    assert "35-43" in markdown and "35-43" in page
    assert "timings: world 2 s, train geobridge 62 s, total 70 s" in markdown
    assert "Timings: world 2 s, train geobridge 62 s, total 70 s" in page
    assert '<a href="examples_P2D.html">P2D</a>' in page and "(R@1 12.5%)" in page
    assert '<img src="recall_geobridge.png" alt="recall curves of geobridge">' in page


def test_html_escapes_text_and_markdown_keeps_it() -> None:
    finding = "S2P: geobridge R@1 <b>4.00</b> vs image-only 5.00 & co -> fused NOT better"
    report = hand_made_report([finding])
    page, markdown = render_html(report), render_markdown(report)

    assert "<b>" not in page
    assert "S2P: geobridge R@1 &lt;b&gt;4.00&lt;/b&gt; vs image-only 5.00 &amp; co" in page
    assert finding in markdown.splitlines()


def test_no_template_syntax_is_left_over() -> None:
    report = hand_made_report(["a finding"])
    for text in (render_markdown(report), render_html(report)):
        for mark in ("{{", "}}", "{%", "{#", "#}"):  # "%}" closes the page's CSS (48%})
            assert mark not in text
    page = render_html(report)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</body></html>")


def test_a_run_without_val_split_prints_no_val_table() -> None:
    numbers = DemoNumbers(
        metrics={"P2D": row(1.0)}, ablation={"geobridge": {"P2D": row(1.0)}}, ablation_val={}, findings=[]
    )
    markdown = render_markdown(build_report(numbers))
    assert "val split" not in markdown
    assert sum(line.startswith("| R@1 |") for line in markdown.splitlines()) == 1  # the ablation alone
