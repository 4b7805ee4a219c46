"""Training logs a person can open: CSV files (``train.csv``, ``val.csv``) and TensorBoard.

Rows carry the optimizer step. On resume, rows written after the checkpoint's step (by the run
that was killed) are dropped first, so the CSV reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class CsvLog:
    """Append-only CSV whose columns are fixed by the first row (later new keys are ignored)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = None
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
            self.columns = header or None

    def truncate_after(self, step: int) -> None:
        """Drop rows whose ``step`` is greater than ``step`` (work the resumed run redoes)."""
        if not self.path.exists():
            return
        with self.path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        kept = [row for row in rows if int(float(row.get("step", 0) or 0)) <= step]
        if len(kept) == len(rows):
            return
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns or [])
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if self.columns is None:
            self.columns = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _plain(v) for k, v in row.items()})


class TrainLogger:
    """Scalars to ``train.csv`` / ``val.csv`` under ``log_dir`` and, optionally, TensorBoard."""

    def __init__(self, log_dir: str | Path, tensorboard: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.train_csv = CsvLog(self.log_dir / "train.csv")
        self.val_csv = CsvLog(self.log_dir / "val.csv")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a declared dependency; stay usable without it
                self._tb = None
            else:
                self._tb = SummaryWriter(log_dir=str(self.log_dir / "tensorboard"))

    def resume_at(self, step: int) -> None:
        """Forget what was logged after checkpoint ``step``: those steps are about to run again."""
        self.train_csv.truncate_after(step)
        self.val_csv.truncate_after(step)
        if self._tb is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb.close()
            self._tb = SummaryWriter(log_dir=str(self.log_dir / "tensorboard"), purge_step=step + 1)

    def log_train(self, step: int, scalars: dict[str, float]) -> None:
        self.train_csv.write({"step": step, **scalars})
        if self._tb is not None:
            for name, value in scalars.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(f"train/{name}", value, step)

    def log_val(self, step: int, metrics: dict[str, float]) -> None:
        self.val_csv.write({"step": step, **metrics})
        if self._tb is not None:
            for name, value in metrics.items():
                self._tb.add_scalar(f"val/{name}", float(value), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value
