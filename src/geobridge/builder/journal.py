"""Resumable stage records: an append-only JSON-lines journal per stage, and a done-marker.

Each finished item is one line, flushed and synced as soon as it is done, so an interrupted run
loses at most the item in flight; a torn last line is ignored on reading. A stage whose marker
exists with the same settings fingerprint is not run again; a marker or journal written with
other settings is discarded (those items would be stale).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_write_text


class Journal:
    """Records keyed by ``key_field`` for one stage, appended as they are finished."""

    def __init__(self, path: Path, key_field: str, fingerprint: str):
        self.path = Path(path)
        self.key_field = key_field
        self.fingerprint = fingerprint
        self.records: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        if not lines:
            return
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = {}
        if header.get("fingerprint") != self.fingerprint:
            self.path.unlink()  # settings changed: these records are stale
            return
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # torn last line of an interrupted run
            self.records[str(record[self.key_field])] = record

    def __contains__(self, key: str) -> bool:
        return str(key) in self.records

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(str(key))

    def __getitem__(self, key: str) -> dict[str, Any]:
        """The record of an item the stage has finished (KeyError for one it has not)."""
        return self.records[str(key)]

    def append(self, record: dict[str, Any]) -> None:
        self.extend([record])

    def extend(self, records: list[dict[str, Any]]) -> None:
        """Append finished records with one flush + sync (cheap batches for fast stages)."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        torn = not new and not _ends_with_newline(self.path)
        with self.path.open("a") as fh:
            if new:
                fh.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            if torn:  # finish the torn line of an interrupted run so the next record stands alone
                fh.write("\n")
            fh.write("".join(json.dumps(r) + "\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())
        for record in records:
            self.records[str(record[self.key_field])] = record


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class StageMarker:
    """``<stage>.done.json``: the stage finished with these settings; holds its summary."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def done(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
        except ValueError:
            return None
        return data if data.get("fingerprint") == self.fingerprint else None

    def mark(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.path, json.dumps({"fingerprint": self.fingerprint, **summary}, indent=1))

    def clear(self) -> None:
        if self.path.exists():
            self.path.unlink()
