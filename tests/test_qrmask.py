"""The QR data mask certgen.pdf.qrmask chooses, checked against libzint (which encodes the symbol)
and against segno, an independent QR encoder: its penalty scores, its masks and its symbols."""

from __future__ import annotations

import random

import numpy as np
import pytest
import segno
import segno.encoder
import zxingcpp

from certgen.pdf import qrmask
from certgen.pdf.render import qr_matrix, qr_symbol

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
"""The QR alphanumeric set: the certificate's payload (ZJ1: + base45) uses only these."""


def payloads(count: int, seed: int, low: int = 5, high: int = 530) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHANUMERIC) for _ in range(rng.randint(low, high))) for _ in range(count)]


def segno_score(matrix: np.ndarray) -> int:
    rows = [bytearray(row.astype(np.uint8).tolist()) for row in matrix]
    return int(segno.encoder.evaluate_mask(rows, len(rows), len(rows)))  # type: ignore[no-untyped-call]


def segno_symbol(text: str) -> segno.QRCode:
    return segno.make_qr(text, error="m", boost_error=False)


def segno_matrix(code: segno.QRCode) -> np.ndarray:
    return np.array(list(code.matrix_iter(border=0)), dtype=bool)


def by_version() -> dict[int, str]:
    """A payload for each version the certificate uses (1-14 at level M)."""
    found: dict[int, str] = {}
    for text in payloads(400, seed=14, high=560):
        found.setdefault(qrmask.version_of(qr_symbol(text, 0).shape[0]), text)
    return found


def test_the_regions_and_masks_are_libzints_for_every_version() -> None:
    """Each mask libzint applies, undone on the data modules, gives the same data for all eight; the
    other modules differ only in the format information: so the data region, the reserved modules
    and the eight patterns are what libzint uses, version by version."""
    versions = by_version()
    assert set(range(1, 15)) <= versions.keys()
    for version, text in versions.items():
        symbols = [qr_symbol(text, mask) for mask in range(8)]
        size = symbols[0].shape[0]
        where, patterns = qrmask.regions(size), qrmask.mask_patterns(size)
        data = [(symbol ^ patterns[mask])[where.data] for mask, symbol in enumerate(symbols)]
        assert all(np.array_equal(d, data[0]) for d in data), version
        fixed = ~where.data & ~where.reserved
        assert all(np.array_equal(s[fixed], symbols[0][fixed]) for s in symbols), version
        assert len({s[where.reserved].tobytes() for s in symbols}) == 8, version  # the mask is in the format
        if version >= 7:  # the version information is reserved, and the same for every mask
            assert where.reserved[:6, size - 11 : size - 8].all() and where.reserved[size - 11 : size - 8, :6].all()


def test_the_scores_are_segnos_on_the_candidates() -> None:
    for text in payloads(40, seed=1):
        symbol = qr_symbol(text, 3)
        candidates = qrmask.candidates(symbol, 3)
        assert qrmask.scores(candidates) == [segno_score(c) for c in candidates], text


@pytest.mark.parametrize("size", [21, 25, 45, 73])
def test_the_scores_are_segnos_on_any_matrix(size: int) -> None:
    """Random matrices, with runs of every length and 1:1:3:1:1 runs planted in rows and columns:
    at the edges, beside light and dark, and overlapping 4 and 6 modules apart, where the order of
    segno's search decides which ones count."""
    rng = np.random.default_rng(size)
    planted = [
        [1, 0, 1, 1, 1, 0, 1], [0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1], [1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0],
        [1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1], [0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0],
        [1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1], [0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0], [1] * 9, [0] * 12,
    ]  # fmt: skip
    for _ in range(6):
        matrices = rng.random((8, size, size)) < rng.uniform(0.2, 0.8)
        for matrix in matrices:
            for _ in range(size // 2):
                run = np.array(rng.choice(np.array(planted, dtype=object)), dtype=bool)
                if len(run) > size:
                    continue
                line, at = int(rng.integers(size)), int(rng.integers(size - len(run) + 1))
                if rng.random() < 0.5:
                    matrix[line, at : at + len(run)] = run
                else:
                    matrix[at : at + len(run), line] = run
        assert qrmask.scores(matrices) == [segno_score(m) for m in matrices]


def test_the_symbol_is_segnos_when_segno_encodes_the_same_data() -> None:
    """Where segno puts the same bits in the data region, it chooses the same mask, and its symbol is
    ours module for module (format information included)."""
    compared = 0
    for text in payloads(120, seed=2):
        ours = qr_matrix(text)
        code = segno_symbol(text)
        theirs = segno_matrix(code)
        if theirs.shape != ours.shape:
            continue
        where, patterns = qrmask.regions(ours.shape[0]), qrmask.mask_patterns(ours.shape[0])
        unmasked = (qr_symbol(text, 0) ^ patterns[0])[where.data]
        if not np.array_equal((theirs ^ patterns[code.mask])[where.data], unmasked):
            continue  # segno encoded the data otherwise (another segmentation or padding)
        compared += 1
        assert np.array_equal(ours, theirs), (text, code.mask)
    assert compared >= 80  # the comparison is not vacuous


def test_the_chosen_symbol_decodes_and_uses_the_lowest_penalty() -> None:
    for text in payloads(12, seed=3, low=200, high=530):
        matrix = qr_matrix(text)
        image = np.pad(np.where(matrix, 0, 255).astype(np.uint8), 4, constant_values=255).repeat(4, 0).repeat(4, 1)
        decoded = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
        assert [d.text for d in decoded] == [text]
        mask = next(m for m in range(8) if np.array_equal(matrix, qr_symbol(text, m)))
        penalty = qrmask.scores(qrmask.candidates(matrix, mask))
        assert mask == penalty.index(min(penalty))


def test_bad_sizes_and_masks_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="21-177 modules in steps of 4, got 22"):
        qrmask.version_of(22)
    with pytest.raises(ValueError, match="0-7, got 8"):
        qrmask.best_mask(qr_symbol("A", 0), 8)
