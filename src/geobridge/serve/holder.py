"""The gallery a running service searches, re-read when its files change on disk.

The service must keep answering when its gallery is rebuilt, extended or damaged while it runs:
each request asks the holder for the gallery; the holder compares the files' sizes and
modification times with those it loaded, reloads (verifying checksums) when they differ, and
remembers why a load failed so every request gets the same clear message until it is fixed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from geobridge.models.device import model_device
from geobridge.retrieval.gallery import CHECKSUM_FILE, INFO_FILE, METADATA_FILE, Gallery, GalleryError

WATCHED_FILES = (INFO_FILE, METADATA_FILE, CHECKSUM_FILE, "index.npy", "index.faiss")


class GalleryUnavailable(Exception):
    """The gallery cannot be used right now; ``code`` says why (corrupt, mismatch, missing)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GalleryHolder:
    """Loads ``folder`` on demand and again whenever its files change."""

    def __init__(self, folder: str | Path, model: Any = None) -> None:
        self.folder = Path(folder)
        self.model = model
        # a rebuilt gallery naming another model loads it where the given one runs
        self.device = str(model_device(model)) if model is not None else "auto"
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None
        self._signature: tuple | None = None
        self._error: GalleryUnavailable | None = None

    def get(self) -> Gallery:
        """The current gallery, or GalleryUnavailable with the reason."""
        signature = self._file_signature()
        with self._lock:
            if signature != self._signature:
                self._load(signature)
            if self._error is not None:
                raise self._error
            assert self._gallery is not None
            return self._gallery

    def _load(self, signature: tuple) -> None:
        from geobridge.retrieval.gallery import GalleryCorruptError, GalleryModelMismatchError

        self._signature = signature
        try:
            gallery = Gallery.load(self.folder, device=self.device)
            model = self.model if self.model is not None else self._reusable_model(gallery)
            if model is not None:
                gallery.use_model(model)
            else:
                _ = gallery.model  # load the recorded model now, so a missing one is reported here
        except GalleryCorruptError as err:
            self._fail("gallery_corrupt", str(err))
        except GalleryModelMismatchError as err:
            self._fail("model_mismatch", str(err))
        except (GalleryError, OSError) as err:
            self._fail("gallery_unavailable", str(err))
        else:
            self._gallery, self._error = gallery, None

    def _fail(self, code: str, message: str) -> None:
        self._gallery, self._error = None, GalleryUnavailable(code, message)

    def _reusable_model(self, gallery: Gallery) -> Any:
        """Keep the model already loaded when the rebuilt gallery still names the same one."""
        previous = self._gallery
        if previous is not None and previous._model is not None and previous.info.model == gallery.info.model:
            return previous._model
        return None

    def _file_signature(self) -> tuple:
        parts: list[tuple[object, ...]] = []
        for name in WATCHED_FILES:
            try:
                stat = (self.folder / name).stat()
                parts.append((name, stat.st_size, stat.st_mtime_ns, stat.st_ino))
            except FileNotFoundError:
                parts.append((name, None))
        return tuple(parts)
