"""Offline GLEAM-X paragraphs from measured cues, in English and Chinese, with varied phrasing.

A paragraph has four parts, always in this order: a description of the satellite image, a
description of the query image, the matching and conflicting cues with their numbers, and the
verdict line (``Verdict: yes|no`` / ``结论：是|否``). Phrasing varies between a few equivalent
templates, chosen by a seed derived from the cues, so one input always gives the same text.
"""

from __future__ import annotations

import random

from geobridge.explain.compare import CueComparison
from geobridge.explain.cues import ImageCues
from geobridge.views import View

LANGS = ("en", "zh")

_VIEW_NAME = {
    "en": {
        "satellite": "satellite image",
        "drone": "drone image",
        "map": "map tile",
        "street": "street panorama",
        "ground": "ground photo",
    },
    "zh": {
        "satellite": "卫星影像",
        "drone": "无人机影像",
        "map": "地图瓦片",
        "street": "街景全景图",
        "ground": "地面照片",
    },
}
_CLASS_NAME = {
    "en": {
        "vegetation": "vegetation",
        "water": "water",
        "built": "built-up roofs",
        "road": "roads and paved ground",
        "bare": "bare ground",
    },
    "zh": {
        "vegetation": "植被",
        "water": "水体",
        "built": "建筑屋顶",
        "road": "道路和铺装地面",
        "bare": "裸地",
    },
}
_ROOF_NAME = {
    "en": {
        "red": "red",
        "brown": "brown",
        "grey": "grey",
        "white": "white",
        "blue-grey": "blue-grey",
        "olive": "olive",
    },
    "zh": {
        "red": "红色",
        "brown": "棕色",
        "grey": "灰色",
        "white": "白色",
        "blue-grey": "蓝灰色",
        "olive": "橄榄色",
    },
}
_CUE_NAME = {
    "en": {
        "vegetation": "vegetation",
        "water": "water",
        "built": "built-up area",
        "road": "roads/paved area",
        "bare": "bare ground",
        "roof": "roof colours",
        "layout": "street-layout regularity",
        "enclosure": "enclosure by buildings",
        "horizon_vegetation": "greenery",
        "horizon_water": "water",
    },
    "zh": {
        "vegetation": "植被",
        "water": "水体",
        "built": "建成区",
        "road": "道路/铺装",
        "bare": "裸地",
        "roof": "屋顶颜色",
        "layout": "街道布局规则度",
        "enclosure": "建筑围合程度",
        "horizon_vegetation": "绿化",
        "horizon_water": "水体",
    },
}
_VERDICT_LINE = {
    "en": {True: "Verdict: yes", False: "Verdict: no"},
    "zh": {True: "结论：是", False: "结论：否"},
}

_OPENERS = {
    "en": ["The {v} shows {items}.", "In the {v} one sees {items}.", "The {v} is made up of {items}."],
    "zh": ["{v}中可见{items}。", "{v}显示{items}。", "从{v}看，{items}。"],
}
_MATCH_HEAD = {
    "en": ["Consistent cues: {items}.", "The views agree on {items}.", "Matching evidence: {items}."],
    "zh": ["一致的线索：{items}。", "两幅图像在以下方面吻合：{items}。"],
}
_CONFLICT_HEAD = {
    "en": ["Conflicting cues: {items}.", "They disagree on {items}.", "Evidence against a match: {items}."],
    "zh": ["矛盾的线索：{items}。", "两幅图像在以下方面不符：{items}。"],
}
_NONE = {
    "en": {"match": "No cue clearly agrees.", "conflict": "No cue clearly conflicts."},
    "zh": {"match": "没有明显一致的线索。", "conflict": "没有明显矛盾的线索。"},
}
_SUMMARY = {
    "en": {
        True: [
            "Taken together, the two images most likely show the same place (probability {p:.0%}).",
            "On balance the evidence supports a match (probability {p:.0%}).",
        ],
        False: [
            "Taken together, the two images most likely show different places (match probability {p:.0%}).",
            "On balance the evidence speaks against a match (match probability {p:.0%}).",
        ],
    },
    "zh": {
        True: ["综合来看，两幅图像很可能拍摄的是同一地点（匹配概率 {p:.0%}）。"],
        False: ["综合来看，两幅图像很可能拍摄的是不同地点（匹配概率 {p:.0%}）。"],
    },
}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(items) if len(items) < 3 else "；".join(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe_image(cues: ImageCues, lang: str, rng: random.Random) -> str:
    """One or two sentences describing an image from its cues."""
    names, view = _CLASS_NAME[lang], _VIEW_NAME[lang].get(cues.view, cues.view)
    cover = sorted(cues.landcover.items(), key=lambda kv: -kv[1])
    parts = [
        f"{names[k]} ({_pct(v)})" if lang == "en" else f"{names[k]}（{_pct(v)}）"
        for k, v in cover
        if v >= 0.03
    ]
    if not parts:
        parts = ["little that can be classified" if lang == "en" else "可识别的地物很少"]
    sentences = [rng.choice(_OPENERS[lang]).format(v=view, items=_join(parts, lang))]
    if cues.view in (View.STREET.value, View.GROUND.value) and cues.skyline is not None:
        sky = cues.skyline
        if lang == "en":
            height = (
                "tall, close buildings"
                if sky.skyline_mean_deg > 25
                else ("low buildings" if sky.skyline_mean_deg > 8 else "an open horizon")
            )
            sentences.append(
                f"Sky fills {_pct(sky.sky_fraction)} of the upper half and the skyline averages "
                f"{sky.skyline_mean_deg:.0f} degrees ({height}); greenery covers {_pct(sky.horizon_vegetation)} "
                f"of the horizon band."
            )
        else:
            height = (
                "高而近的建筑"
                if sky.skyline_mean_deg > 25
                else ("低矮建筑" if sky.skyline_mean_deg > 8 else "开阔的地平线")
            )
            sentences.append(
                f"天空占上半部分的{_pct(sky.sky_fraction)}，天际线平均仰角{sky.skyline_mean_deg:.0f}度（{height}），"
                f"地平线附近绿化占{_pct(sky.horizon_vegetation)}。"
            )
    elif cues.roof_colours and cues.landcover.get("built", 0) >= 0.05:
        roof = _ROOF_NAME[lang].get(cues.dominant_roof or "", cues.dominant_roof)
        grid = cues.layout.regularity >= 0.45
        if lang == "en":
            layout = "a regular, grid-like street pattern" if grid else "an irregular, organic street pattern"
            sentences.append(
                f"Roofs are mostly {roof}, in {layout} (regularity {cues.layout.regularity:.2f})."
            )
        else:
            layout = "规则的网格状街道" if grid else "不规则的有机街道"
            sentences.append(f"屋顶以{roof}为主，呈{layout}（规则度 {cues.layout.regularity:.2f}）。")
    return " ".join(sentences) if lang == "en" else "".join(sentences)


def describe_comparison(c: CueComparison, query_view: str, lang: str) -> str:
    """One cue with its numbers, e.g. ``vegetation (42% vs 36%)``."""
    name = _CUE_NAME[lang][c.key]
    if c.key == "roof":
        sat_roof, _, q_roof = c.detail.partition("/")
        roofs = _ROOF_NAME[lang]
        if lang == "en":
            return f"{name} (mostly {roofs.get(sat_roof, sat_roof)} vs {roofs.get(q_roof, q_roof)}, {_pct(c.query_value)} overlap)"
        return f"{name}（{roofs.get(sat_roof, sat_roof)}对{roofs.get(q_roof, q_roof)}，重合{_pct(c.query_value)}）"
    if c.key == "layout":
        if lang == "en":
            return f"{name} ({c.satellite_value:.2f} vs {c.query_value:.2f})"
        return f"{name}（{c.satellite_value:.2f} 对 {c.query_value:.2f}）"
    if c.key == "enclosure":
        if lang == "en":
            return (
                f"{name} ({_pct(c.satellite_value)} built-up from above suggests about {_pct(c.expected_value)} "
                f"sky; the {_VIEW_NAME['en'][query_view]} shows {_pct(c.query_value)})"
            )
        return f"{name}（俯视建成区{_pct(c.satellite_value)}，预计天空约{_pct(c.expected_value)}，实际{_pct(c.query_value)}）"
    if c.key in ("horizon_vegetation", "horizon_water"):
        if lang == "en":
            return (
                f"{name} ({_pct(c.satellite_value)} from above, {_pct(c.query_value)} at the horizon, "
                f"about {_pct(c.expected_value)} expected)"
            )
        return f"{name}（俯视{_pct(c.satellite_value)}，地平线处{_pct(c.query_value)}，预计约{_pct(c.expected_value)}）"
    if lang == "en":
        return f"{name} ({_pct(c.satellite_value)} vs {_pct(c.query_value)})"
    return f"{name}（{_pct(c.satellite_value)} 对 {_pct(c.query_value)}）"


def write_paragraph(
    satellite: ImageCues,
    query: ImageCues,
    comparisons: list[CueComparison],
    verdict: bool,
    probability: float,
    lang: str = "en",
    similarity: float | None = None,
) -> str:
    """The full GLEAM-X paragraph ending with the verdict line."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    seed = hash(
        tuple(round(v, 3) for v in list(satellite.landcover.values()) + list(query.landcover.values()))
    )
    rng = random.Random(seed)
    matching = [
        describe_comparison(c, query.view, lang) for c in comparisons if c.status == "match" and c.salient
    ]
    conflicting = [describe_comparison(c, query.view, lang) for c in comparisons if c.status == "conflict"]
    parts = [describe_image(satellite, lang, rng), describe_image(query, lang, rng)]
    parts.append(
        rng.choice(_MATCH_HEAD[lang]).format(items=_join(matching, lang))
        if matching
        else _NONE[lang]["match"]
    )
    parts.append(
        rng.choice(_CONFLICT_HEAD[lang]).format(items=_join(conflicting, lang))
        if conflicting
        else _NONE[lang]["conflict"]
    )
    if similarity is not None:
        parts.append(
            f"The model's embedding similarity is {similarity:.2f}."
            if lang == "en"
            else f"模型嵌入相似度为 {similarity:.2f}。"
        )
    parts.append(rng.choice(_SUMMARY[lang][verdict]).format(p=probability))
    parts.append(_VERDICT_LINE[lang][verdict])
    return (" " if lang == "en" else "").join(parts)
