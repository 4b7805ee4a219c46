"""``--option KEY=VALUE`` values converted by the declared type of the option they set.

The type comes from where the option is declared: a protocol's options dataclass
(:mod:`geobridge.evaluation.protocols`) or a dataset loader's ``__init__`` annotations. Text is
never guessed at (no YAML): ``split=2019`` stays the text ``"2019"`` where the option is text,
and ``altitude=200`` becomes the int ``200`` where it is an int.

=====================  ==========================================================================
declared type          accepted text
=====================  ==========================================================================
``bool``               ``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``)
``int`` / ``float``    a number (``200``, ``0.5``); an int option refuses ``0.5``
``str`` / ``Path``     the text as written
``tuple`` / ``list``   comma-separated items of the item type (``25,50,100``, ``(20, 6, 0.3)``)
``X | None``           ``null`` (or ``none``) for None, else as ``X``
a union                the first member the text converts to, text-typed members last
=====================  ==========================================================================
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import PurePath
from typing import Any

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NULL = ("null", "none", "~")
_SEQUENCES = (tuple, list, collections.abc.Sequence)


class OptionValueError(ValueError):
    """A value that does not convert to the option's declared type; ``expected`` says what does."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def declared_types(owner: Any) -> dict[str, Any]:
    """The option names and declared types of a dataclass or of a callable's parameters (a
    loader's ``__init__``: ``self`` and ``root`` left out). Annotations that cannot be resolved
    count as text-free ``Any``."""
    if is_dataclass(owner):
        names = [f.name for f in fields(owner)]
    else:
        names = [p for p in inspect.signature(owner).parameters if p not in ("self", "root")]
    try:
        hints = typing.get_type_hints(owner)
    except (NameError, TypeError):  # an unresolvable annotation loses only the type check
        hints = {}
    return {name: hints.get(name, Any) for name in names}


def describe(hint: Any) -> str:
    """The declared type in words, for error messages and help (``int``, ``float list``, ...)."""
    if hint is Any:
        return "text"
    args = typing.get_args(hint)
    if _is_union(hint):
        members = [describe(a) for a in args if a is not type(None)]
        return " or ".join([*members, *(["null"] if type(None) in args else [])])
    origin = typing.get_origin(hint)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return f"comma-separated {describe(args[0])} list"
        if args:
            return ",".join(describe(a) for a in args)
        return "comma-separated list"
    if hint is bool:
        return "true or false"
    if isinstance(hint, type) and issubclass(hint, (str, PurePath)):
        return "text"
    return getattr(hint, "__name__", str(hint))


def convert(raw: str, hint: Any) -> Any:
    """``raw`` (already stripped) as a value of type ``hint``; :class:`OptionValueError` if it is not one."""
    if hint is Any:
        return raw
    if _is_union(hint):
        args = typing.get_args(hint)
        if type(None) in args and raw.lower() in _NULL:
            return None
        members = sorted((a for a in args if a is not type(None)), key=_is_text)  # text last
        for member in members:
            try:
                return convert(raw, member)
            except OptionValueError:
                continue
        raise OptionValueError(describe(hint))
    origin = typing.get_origin(hint)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        return _sequence(raw, hint, origin or hint)
    if hint is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise OptionValueError(describe(hint))
    if hint is int or hint is float:
        try:
            return hint(raw)
        except ValueError:
            raise OptionValueError(describe(hint)) from None
    if _is_text(hint):
        return raw
    raise OptionValueError(f"{describe(hint)} (not settable from the command line)")


def _sequence(raw: str, hint: Any, origin: Any) -> tuple[Any, ...] | list[Any]:
    args = typing.get_args(hint)
    text = raw[1:-1] if raw[:1] + raw[-1:] in ("()", "[]") else raw
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
        kinds = [args[0]] * len(items)
    elif args:
        if len(items) != len(args):
            raise OptionValueError(describe(hint))
        kinds = list(args)
    else:
        kinds = [Any] * len(items)
    try:
        values = [convert(item, kind) for item, kind in zip(items, kinds)]
    except OptionValueError:
        raise OptionValueError(describe(hint)) from None
    return list(values) if origin is list else tuple(values)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_text(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, (str, PurePath))


def parse_option_texts(
    texts: list[str], declared: dict[str, Any], kind: str, name: str, skip: dict[str, str] | None = None
) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: typed value}`` by the ``declared`` types of the options
    of ``kind`` ``name`` (``"dataset"``, ``"vigor"``; ``"protocol"``, ``"u1652"``). ``skip`` maps declared keys that
    other flags set to the advice naming that flag. Malformed items, unknown or repeated keys and
    values of the wrong type raise :class:`ValueError` with a one-line message that names the key,
    the accepted keys and their types."""
    skip = skip or {}
    accepted = {k: v for k, v in declared.items() if k not in skip}
    listing = (
        f"{', '.join(accepted)} (types: {'; '.join(f'{k}: {describe(v)}' for k, v in accepted.items())})"
        if accepted
        else "none"
    )
    options: dict[str, Any] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--option {text!r} is not KEY=VALUE: write e.g. --option mode=same")
        if key in skip:
            raise ValueError(f"--option {key}: {skip[key]}")
        if key not in accepted:
            raise ValueError(f"{kind} {name} has no option {key!r}; its options are: {listing}")
        if key in options:
            raise ValueError(f"--option {key} is given twice: give each option once")
        try:
            options[key] = convert(raw.strip(), accepted[key])
        except OptionValueError as err:
            raise ValueError(
                f"--option {key}={raw.strip()}: {name}'s {key} takes "
                f"{err.expected}; its options are: {listing}"
            ) from None
    return options
