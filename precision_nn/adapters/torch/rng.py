"""Torch's random number generators during a check: seeded for every evaluation, the
caller's state restored afterwards."""

from __future__ import annotations

import torch

__all__ = ["Rng"]


class Rng:
    """Torch's RNG for one check: every evaluation starts from the state `seed` gives, and
    the caller's state (CPU and the CUDA device) is put back by `restore`.

    (Resetting a saved state is far cheaper than `torch.manual_seed`, which also seeds
    every accelerator backend.)

    Examples
    --------
    >>> import torch
    >>> before = torch.get_rng_state()
    >>> rng = Rng(3, torch.device("cpu"))
    >>> a = torch.rand(2); rng.reset(); b = torch.rand(2)
    >>> bool(torch.equal(a, b)), bool(torch.equal(a, torch.manual_seed(3) and torch.rand(2)))
    (True, True)
    >>> rng.restore(); bool(torch.equal(torch.get_rng_state(), before))
    True
    """

    def __init__(self, seed: int, device: torch.device):
        self.cuda = device.type == "cuda"
        self.index = (device.index if device.index is not None else
                      torch.cuda.current_device()) if self.cuda else None
        self.saved = self._get()
        # the state `torch.manual_seed(seed)` gives, taken from a fresh generator (the CUDA
        # device's seeded alone): far cheaper than seeding every backend
        cpu = torch.Generator().manual_seed(seed).get_state()
        cuda = None
        if self.cuda:
            with torch.cuda.device(self.index):
                torch.cuda.manual_seed(seed)
            cuda = torch.cuda.get_rng_state(self.index)
        self.seeded = (cpu, cuda)
        self._set(self.seeded)
        self.used = True

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.index) if self.cuda else None
        return torch.get_rng_state(), cuda

    def _set(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if self.cuda:
            torch.cuda.set_rng_state(state[1], self.index)

    def reset(self) -> None:
        """Back to the seeded state (before each evaluation, if the code draws numbers)."""
        if self.used:
            self._set(self.seeded)

    def note_use(self) -> None:
        """Record whether the code drew random numbers since the last `reset`."""
        now = self._get()
        self.used = not torch.equal(now[0], self.seeded[0]) or (
            self.cuda and not torch.equal(now[1], self.seeded[1]))

    def restore(self) -> None:
        """The caller's state, as before the check."""
        self._set(self.saved)
