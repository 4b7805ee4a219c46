"""Read the final yes/no verdict out of an explanation paragraph (ours or a language model's).

GLEAM-X paragraphs end with the verdict. Models do not always follow the format exactly, so the
parser looks, from the end of the text backwards, for: an explicit ``Verdict:`` / ``Answer:`` /
``Conclusion:`` line (``结论：是/否`` in Chinese), then a bold or bare final ``yes``/``no``,
then phrases like "do not match" / "same location". It returns None when nothing is found,
never guesses.
"""

from __future__ import annotations

import re

_LABELLED = re.compile(
    r"(?:verdict|answer|conclusion|final\s+answer|correspondence)\s*[:：]?\s*\**\s*(?P<word>yes|no|true|false|match|mismatch|not\s+a\s+match)\b",
    re.IGNORECASE,
)
_ZH_LABELLED = re.compile(
    r"(?:结论|答案|判断|最终结论)\s*[:：]?\s*\**\s*(?P<word>是|否|匹配|不匹配|一致|不一致)"
)
_TRAILING = re.compile(r"\b(?P<word>yes|no)\b[\s.!*\"'”)]*$", re.IGNORECASE)
_PHRASE_NO = re.compile(
    r"(do(?:es)?\s+not\s+(?:show\s+the\s+same|match|correspond)|not\s+the\s+same\s+(?:place|location)|different\s+(?:places|locations))",
    re.IGNORECASE,
)
_PHRASE_YES = re.compile(
    r"(same\s+(?:place|location)|do\s+match|does\s+match|correspond\s+to\s+each\s+other)", re.IGNORECASE
)

_YES_WORDS = {"yes", "true", "match", "是", "匹配", "一致"}


def _word_is_yes(word: str) -> bool:
    return re.sub(r"\s+", " ", word.strip().lower()) in _YES_WORDS


def parse_verdict(text: str) -> bool | None:
    """The final verdict of ``text``: True (match), False (no match), or None if there is none."""
    if not text:
        return None
    last: tuple[int, bool] | None = None
    for pattern in (_LABELLED, _ZH_LABELLED):
        for m in pattern.finditer(text):
            if last is None or m.start() >= last[0]:
                last = (m.start(), _word_is_yes(m.group("word")))
    if last is not None:
        return last[1]
    trailing = _TRAILING.search(text.strip())
    if trailing:
        return trailing.group("word").lower() == "yes"
    no = list(_PHRASE_NO.finditer(text))
    yes = [y for y in _PHRASE_YES.finditer(text) if not any(n.start() <= y.start() < n.end() for n in no)]
    if no or yes:
        last_no = no[-1].start() if no else -1
        last_yes = yes[-1].start() if yes else -1
        return last_yes > last_no
    return None
