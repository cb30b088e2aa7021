"""The QR code's data mask, chosen by the penalty rules of ISO/IEC 18004:2015 §7.8.3, in numpy.

zxing-cpp (libzint) encodes the certificate's QR code. Left to choose the mask itself, libzint
spends ~0.65 ms of its ~0.75 ms evaluating the eight masks, more than drawing the whole symbol.
Told the mask, it encodes in ~0.09 ms. So :func:`best_mask` takes the symbol libzint made with
mask 0, undoes that mask on the data modules, and scores all eight masks at once:

- N1: each run of 5 + i modules of one colour in a row or column scores 3 + i;
- N2: each 2 x 2 block of one colour scores 3;
- N3: each 1:1:3:1:1 (dark:light:dark:light:dark) run in a row or column with 4 light modules
  before or after it (the edge of the symbol counts as light) scores 40;
- N4: 10 for every full 5 % that dark modules are off 50 %.

As segno does, the symbol is scored before its format and version information are added (those
modules are light) and ties go to the lower mask. Its scores are segno's, module for module
(``tests/test_qrmask.py`` scores the same matrices with segno, an independent implementation, and
checks the masks chosen for the same data). libzint then encodes with the mask chosen here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


def version_of(size: int) -> int:
    """The QR version of a ``size`` x ``size`` symbol; ValueError for a size no version has."""
    if size < 21 or size > 177 or (size - 17) % 4:
        raise ValueError(f"QR symbol size must be 21-177 modules in steps of 4, got {size}")
    return (size - 17) // 4


def alignment_centres(version: int) -> list[int]:
    """The row (and column) coordinates of the version's alignment pattern centres (ISO/IEC 18004
    Annex E, by its construction rule: evenly spaced, even steps, from column 6 to size - 7)."""
    if version == 1:
        return []
    count = version // 7 + 2
    size = version * 4 + 17
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    return [6, *sorted(size - 7 - i * step for i in range(count - 1))]


@dataclass(frozen=True)
class Regions:
    """Where a version's modules belong (boolean matrices, rows first)."""

    data: np.ndarray
    """Modules of the encoding region: the data and error correction codewords (and remainder bits)
    that a mask inverts."""
    reserved: np.ndarray
    """Format information (with the dark module) and version information: light while scoring."""


@functools.cache
def regions(size: int) -> Regions:
    """The encoding region and the reserved modules of a ``size`` x ``size`` QR symbol."""
    version = version_of(size)
    function = np.zeros((size, size), dtype=bool)
    for r, c in ((0, 0), (0, size - 8), (size - 8, 0)):  # finder patterns with their separators
        function[r : r + 8, c : c + 8] = True
    function[6, :] = function[:, 6] = True  # timing patterns
    centres = alignment_centres(version)
    corners = {(centres[0], centres[0]), (centres[0], centres[-1]), (centres[-1], centres[0])} if centres else set()
    for r in centres:
        for c in centres:
            if (r, c) not in corners:  # the three that would overlap a finder pattern are absent
                function[r - 2 : r + 3, c - 2 : c + 3] = True
    reserved = np.zeros((size, size), dtype=bool)
    reserved[8, :9] = reserved[:9, 8] = True  # format information around the upper-left finder
    reserved[8, size - 8 :] = True  # beside the upper-right finder
    reserved[size - 8 :, 8] = True  # beside the lower-left finder, with the dark module
    if version >= 7:  # version information
        reserved[:6, size - 11 : size - 8] = reserved[size - 11 : size - 8, :6] = True
    reserved[6, :] = reserved[:, 6] = False  # the timing patterns cross the format information
    function |= reserved
    reserved.setflags(write=False)
    data = ~function
    data.setflags(write=False)
    return Regions(data, reserved)


@functools.cache
def mask_patterns(size: int) -> np.ndarray:
    """The eight data mask patterns of ISO/IEC 18004 §7.8.2 (8 x size x size, True: invert)."""
    i, j = np.indices((size, size))
    patterns = np.stack([
        (i + j) % 2 == 0,
        i % 2 == 0,
        j % 3 == 0,
        (i + j) % 3 == 0,
        (i // 2 + j // 3) % 2 == 0,
        (i * j) % 2 + (i * j) % 3 == 0,
        ((i * j) % 2 + (i * j) % 3) % 2 == 0,
        ((i + j) % 2 + (i * j) % 3) % 2 == 0,
    ])  # fmt: skip
    patterns.setflags(write=False)
    return patterns


def candidates(symbol: np.ndarray, mask: int) -> np.ndarray:
    """The eight symbols as they are scored (8 x size x size), from ``symbol`` encoded with ``mask``:
    its function patterns, each mask applied to its unmasked data, format and version light."""
    size = symbol.shape[0]
    where = regions(size)
    patterns = mask_patterns(size)
    unmasked = symbol ^ patterns[mask]
    scored: np.ndarray = np.where(where.data, unmasked ^ patterns, symbol & ~where.reserved)
    return scored


GAP = 4
"""Light modules laid between lines (and before the first) when every row and column of the eight
symbols is laid end to end in one flat array: a shift along a line is then one contiguous slice
(several times faster than a strided one), the gap stands for the light beyond a symbol's edge that
rule N3 counts, and no 1:1:3:1:1 run can span it."""


@functools.cache
def _windows(size: int, count: int) -> np.ndarray:
    """Which 5-module windows of the flat array of ``count`` lines of ``size`` lie within one line
    (rule N1 must not run across a gap)."""
    inside = np.zeros(GAP + (size + GAP) * count, dtype=bool)  # a gap after the last line too
    _lines(inside, size, count)[:] = True
    window = inside[:-4] & inside[1:-3] & inside[2:-2] & inside[3:-1] & inside[4:]
    window.setflags(write=False)
    return window


def _lines(flat: np.ndarray, size: int, count: int) -> np.ndarray:
    """The ``count`` x ``size`` modules of the flat array (a view)."""
    return flat[GAP : GAP + (size + GAP) * count].reshape(count, size + GAP)[:, :size]


def _n1(flat: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Rule N1's score for each module where a window of 5 begins: a run of 5 + i equal modules holds 1 + i
    windows of 5 and scores 3 + i, i.e. its windows plus 2 for its first."""
    same = flat[1:] == flat[:-1]
    five = same[:-3] & same[1:-2] & same[2:-1] & same[3:] & window
    first = five.copy()
    first[1:] &= ~five[:-1]
    scored = np.zeros(flat.size, dtype=np.uint8)  # as long as ``flat``: no window begins in its last 4
    scored[:-4] = five.view(np.uint8) + 2 * first.view(np.uint8)
    return scored


def _n3(flat: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Rule N3 for each module (40 where a scoring run begins), as a left-to-right search along each
    line finds the runs: after a run that scores the search resumes past it (so a run that overlaps
    it, 4 or 6 modules on, does not count), after one that does not 4 modules on."""
    end = flat.size - 6
    match = (
        flat[:end] & light[1 : end + 1] & flat[2 : end + 2] & flat[3 : end + 3] & flat[4 : end + 4]
        & light[5 : end + 5] & flat[6:]
    )  # fmt: skip
    light4 = light[:-3] & light[1:-2] & light[2:-1] & light[3:]
    hit = np.zeros(flat.size, dtype=bool)
    # a run beginning at p: the 4 modules before it are p - 4 .. p - 1, the 4 after p + 7 .. p + 10
    hit[GAP : end - GAP] = match[GAP : end - GAP] & (light4[: end - 2 * GAP] | light4[GAP + 7 : end + 3])
    follows = np.zeros(end, dtype=bool)  # runs that begin 4 or 6 modules after another (they overlap it)
    follows[4:] = match[:-4]
    follows[6:] |= match[:-6]
    passed: set[int] = set()
    for run in np.flatnonzero(follows & match).tolist():  # rare: the search's order decides, run by run
        if any(hit[run - back] and run - back not in passed for back in (4, 6)):
            passed.add(run)
    hit[list(passed)] = False
    return hit


def scores(scored: np.ndarray) -> list[int]:
    """The penalty of each symbol of ``scored`` (count x size x size, as :func:`candidates` makes them)."""
    count, size = scored.shape[0], scored.shape[-1]
    lines = np.concatenate([scored, scored.transpose(0, 2, 1)])  # rows, then the columns as rows
    window = _windows(size, 2 * count * size)
    flat = np.zeros(window.size + 4, dtype=bool)
    _lines(flat, size, 2 * count * size)[:] = lines.reshape(-1, size)
    symbols = slice(GAP, GAP + 2 * count * size * (size + GAP))  # each symbol's rows, then its columns

    def per_symbol(found: np.ndarray) -> np.ndarray:
        summed: np.ndarray = found[symbols].reshape(2 * count, -1).sum(axis=1, dtype=np.int64)
        return summed

    n1 = per_symbol(_n1(flat, window))
    n3 = per_symbol(_n3(flat, ~flat))
    top_left = scored[:, :-1, :-1]
    n2 = (
        ((top_left == scored[:, 1:, :-1]) & (top_left == scored[:, :-1, 1:]) & (top_left == scored[:, 1:, 1:]))
        .reshape(count, -1)
        .sum(axis=1)
    )
    dark = scored.reshape(count, -1).sum(axis=1)
    return [
        int(n1[k] + n1[count + k]) + 3 * int(n2[k]) + 40 * int(n3[k] + n3[count + k])
        + 10 * int(abs(float(dark[k]) / size**2 * 100 - 50) / 5)
        for k in range(count)
    ]  # fmt: skip


def best_mask(symbol: np.ndarray, mask: int) -> int:
    """The mask (0-7) the penalty rules choose for the data of ``symbol``, a QR symbol (True: dark,
    no quiet zone) encoded with ``mask``; the lowest-numbered of equal scores."""
    if not 0 <= mask <= 7:
        raise ValueError(f"QR data mask must be 0-7, got {mask}")
    penalty = scores(candidates(symbol, mask))
    return penalty.index(min(penalty))
