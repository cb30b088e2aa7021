"""Work units of an archive run: how the listing is cut, lazily and without mixing containers."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_verify import _archive
from verify.archive import Item, discover, listing
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


def test_units_are_cut_from_a_generator_one_file_ahead_at_most() -> None:
    pulled = 0

    def todo() -> Iterator[tuple[int, Item]]:
        nonlocal pulled
        for n in range(1000):
            pulled += 1
            yield n, Item(f"{n}.png", f"/x/{n}.png")

    units = make_units(todo(), 16, workers=2, total=1000)
    assert len(next(units).items) == 16 and pulled == 17  # the 17th file closed the first unit
    assert len(next(units).items) == 16 and pulled == 33


def test_the_listing_is_walked_as_it_is_read(tmp_path: Path) -> None:
    """The listing holds one folder at a time: a file added to a folder not reached yet is found."""
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.png").write_bytes(b"x")
    walk = listing([tmp_path])
    first = next(walk)
    assert isinstance(first, Item) and first.source.endswith("a/1.png")
    (tmp_path / "c" / "2.png").write_bytes(b"x")
    assert [Path(i.source).relative_to(tmp_path).as_posix() for i in walk if isinstance(i, Item)] == [
        "b/1.png", "c/1.png", "c/2.png"
    ]  # fmt: skip
