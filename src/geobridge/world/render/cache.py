"""A small per-world cache for data the renderers derive from a world once and reuse for every
location (the padded height pyramid, sun-shadow tiles).

Entries are keyed by the world object (held weakly, dropped when the world is garbage collected)
and by the identity of its rasters, so a world whose arrays are replaced gets fresh entries.
Worlds are treated as immutable while they are being rendered: editing a raster in place after
rendering from it leaves stale entries (``age_world`` always returns a new world).
"""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from geobridge.world.model import World

_MAX_ENTRIES_PER_WORLD = 8
_entries: dict[int, tuple[weakref.ref, OrderedDict]] = {}


def _raster_key(world: World) -> tuple[int, int, int, tuple[int, ...]]:
    return (id(world.height), id(world.landcover), id(world.colour), world.height.shape)


def _forget(wid: int, _ref: weakref.ref) -> None:
    _entries.pop(wid, None)


def cached(world: World, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (world, rasters, key); the shared result is read-only."""
    wid = id(world)
    slot = _entries.get(wid)
    if slot is None or slot[0]() is not world:
        ref = weakref.ref(world, functools.partial(_forget, wid))
        slot = (ref, OrderedDict())
        _entries[wid] = slot
    store = slot[1]
    full_key = (_raster_key(world), key)
    if full_key in store:
        store.move_to_end(full_key)
        return store[full_key]
    value = compute()
    store[full_key] = value
    while len(store) > _MAX_ENTRIES_PER_WORLD:
        store.popitem(last=False)
    return value
