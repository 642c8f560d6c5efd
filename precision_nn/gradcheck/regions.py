"""The regions a bug pattern is tried on, the test that a pattern explains one, and the
detector that runs a pattern over every open region (`patterns` holds the patterns).

A region is each disagreeing block, or the one column or row of a block its
disagreement is confined to. A pattern explains a region when, applied, it leaves a
residual within each coordinate's own tolerance at every coordinate of the region (up
to the rounding of the float64 copies, `evidence.EXPLAIN_ROUNDING`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from precision_nn.gradcheck.diagnosis import (
    Detector,
    Finding,
    Region,
    against_limit,
    cap,
    explained,
)
from precision_nn.gradcheck.evidence import CheckData

__all__ = ["FACTOR_RTOL", "block_label", "fits", "narrow_regions", "open_regions",
           "pattern_detector", "pattern_finding", "regions"]

# a factor this close to a simple candidate (1/m, 2, ...) is reported as that candidate
FACTOR_RTOL = 1e-6


def regions(data: CheckData) -> list[Region]:
    """The regions to explain: per disagreeing block, the narrowest that holds its failures."""
    failing = data.failing
    out = []
    for b in range(len(data.blocks.shapes)):
        span = data.blocks.index(b)
        fail = failing[span]
        if not fail.any():
            continue
        idx = np.arange(span.start, span.stop)
        out.extend(narrow_regions(data, b, idx, fail))
        out.append(Region(idx, block_label(data, b), b))
    return out


def narrow_regions(data: CheckData, b: int, idx: np.ndarray, fail: np.ndarray) -> list[Region]:
    """The single column (or row) of block `b` the failures are confined to, if any."""
    shape = data.blocks.shapes[b]
    if len(shape) != 2:
        return []
    found = []
    for axis, values in (("column", data.blocks.columns(b)), ("row", data.blocks.rows(b))):
        hit = np.unique(values[fail])
        if hit.size == 1 and shape[1 if axis == "column" else 0] > 1:
            keep = values == hit[0]
            found.append(Region(idx[keep], _line_label(data, b, axis, int(hit[0])), b))
    return found


def block_label(data: CheckData, b: int) -> str:
    if not data.blocks.given:
        return "the whole gradient"
    return f"{data.blocks.name(b)} (shape {data.blocks.shapes[b]})"


def _line_label(data: CheckData, b: int, axis: str, k: int) -> str:
    name = data.blocks.column_name(b, k) if axis == "column" else None
    note = f" ({name})" if name else ""
    return f"{data.blocks.name(b)}, {axis} {k}{note}"


def open_regions(data: CheckData, earlier: Sequence[Finding]) -> list[Region]:
    """Regions whose failures no earlier finding explains."""
    done = explained(data, earlier)
    failing = data.failing
    return [r for r in regions(data) if (failing[r.indices] & ~done[r.indices]).any()]


def fits(data: CheckData, region: Region, corrected: np.ndarray, slack: float = 1.0) -> bool:
    """Whether `corrected` reproduces the reference on `region`."""
    n = data.reference[region.indices]
    return bool(np.all(np.abs(corrected - n) <= slack * data.explain_tolerance[region.indices]))


def pattern_finding(kind: str, region: Region, message: str, extra: dict) -> Finding:
    return Finding(kind, message, {"region": region.label, "block": region.block,
                                   "coordinates": region.indices.tolist(), **extra})


def pattern_detector(kind: str, test: Callable[[CheckData, Region], Finding | None]) -> Detector:
    """A detector that tries `test` on every open region and merges a whole-gradient hit."""
    def detect(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
        data = against_limit(data)
        found, seen = [], set()
        for region in open_regions(data, [*earlier]):
            # a region whose failures a finding of this detector explains already (one
            # that spans several blocks) is not tried again
            done = explained(data, found)[region.indices]
            if region.block in seen or not (data.failing[region.indices] & ~done).any():
                continue
            finding = test(data, region)
            if finding is not None:
                found.append(finding)
                seen.add(region.block)
        return _merge_whole(data, kind, found)
    detect.__name__ = f"detect_{kind}"
    return detect


def _merge_whole(data: CheckData, kind: str, found: list[Finding]) -> list[Finding]:
    """One finding when every block shows the same pattern with the same parameter."""
    nblocks = len(data.blocks.shapes)
    if len(found) < 2 or len(found) != nblocks or len({f.kind for f in found}) != 1:
        return found
    factors = [f.evidence.get("factor") for f in found]
    same = all(_same(factors[0], f) for f in factors[1:])
    whole = sum(len(f.evidence["coordinates"]) for f in found) == data.analytic.size
    if not same or not whole:
        return found
    first = found[0]
    message = first.message.replace(cap(first.evidence["region"]), "Every block", 1)
    if kind == "layout":
        message = ("Every block holds the right numbers in the wrong places: each block's "
                   f"gradient is {first.evidence['how']}.")
    coords = [c for f in found for c in f.evidence["coordinates"]]
    return [Finding(first.kind, message, {**first.evidence, "region": "every block",
                                          "block": None, "coordinates": coords})]


def _same(p: Any, q: Any) -> bool:
    if isinstance(p, str) or isinstance(q, str):
        return p == q
    return abs(p - q) <= FACTOR_RTOL * max(abs(p), abs(q))
