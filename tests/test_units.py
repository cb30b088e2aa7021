"""Work units of an archive run: how the listing is cut, lazily and without mixing containers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.test_verify import _archive
from verify.archive import Item, discover
from verify.units import make_units


def test_units_are_file_batches_or_ranges_of_one_zip_and_cover_the_listing_once(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "archive")  # 3 plain scans, a ZIP of 7 members
    with zipfile.ZipFile(folder / "other.zip", "w") as z:
        for i in range(5):
            z.writestr(f"{i}.png", b"not really a png")
    items = discover([folder]).items
    units = list(make_units(list(enumerate(items)), 3))
    assert sorted(p for u in units for p in u.positions) == list(range(len(items)))  # each file once
    assert len({u.id for u in units}) == len(units)
    for unit in units:
        assert 1 <= len(unit.items) <= 3
        assert len({i.path if i.member is not None else None for i in unit.items}) == 1  # one container
        assert all(Path(i.path).is_absolute() for i in unit.items)
        members = [i.member for i in unit.items if i.member is not None]
        if members:  # consecutive members of the ZIP, by index
            assert members == list(range(members[0], members[0] + len(members)))


def test_units_shrink_towards_the_end_so_workers_finish_together() -> None:
    todo = [(n, Item(f"{n}.png", f"/x/{n}.png")) for n in range(200)]
    sizes = [len(u.items) for u in make_units(todo, 16, workers=2)]
    assert sum(sizes) == 200 and sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 16 and min(sizes[:-1]) == 2  # never below 16 // 8 but for what is left at the end
    with pytest.raises(ValueError, match="at least 1, got 0"):
        next(make_units(todo, 0))
