"""The last good training state: what a step that goes non-finite is rolled back to.

A step whose loss or gradient is NaN or infinite is skipped and the trainable state of the last
good step (parameters, buffers, the optimizer's moments, the PLANET head) is put back, so one bad
batch cannot poison the run; ``max_bad_steps`` bad steps in a row mean the run has diverged.
Only what a step can change is copied: frozen weights stay where they are.
"""

from __future__ import annotations

import copy
from typing import Any

import torch


class LastGoodState:
    """A copy of the trainable state at ``step``, and the count of bad steps since."""

    def __init__(self, model: torch.nn.Module, optimizer: Any, physical_head: torch.nn.Module | None = None):
        self.model, self.optimizer, self.physical_head = model, optimizer, physical_head
        self.state: dict[str, Any] | None = None
        self.step = 0  # the step the copy was taken at
        self.bad_in_row = 0

    def snapshot(self, step: int) -> None:
        """Copy the trainable state of ``step`` (a good one)."""
        # drop the previous copy first: holding both would add a second model + optimizer copy
        # to the device's peak (see geobridge.train.plan)
        self.state = None
        changing = {n for n, p in self.model.named_parameters() if p.requires_grad}
        changing |= {n for n, _ in self.model.named_buffers()}
        self.state = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items() if k in changing},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        if self.physical_head is not None:
            self.state["physical_head"] = {
                k: v.detach().clone() for k, v in self.physical_head.state_dict().items()
            }
        self.step = step

    def good_step(self) -> None:
        """A step went well: the run of bad steps is over."""
        self.bad_in_row = 0

    def bad_step(self) -> int:
        """A step went non-finite: put the last good state back; returns the bad steps in a row."""
        self.bad_in_row += 1
        if self.state is None:
            return self.bad_in_row
        self.model.load_state_dict(self.state["model"], strict=False)
        if self.physical_head is not None:
            self.physical_head.load_state_dict(self.state["physical_head"])
        self.optimizer.load_state_dict(copy.deepcopy(self.state["optimizer"]))
        return self.bad_in_row
