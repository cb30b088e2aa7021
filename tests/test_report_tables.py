"""A report table (certgen.issuing.reports.TableWriter): what its XLSX holds, and what an error while
the spreadsheet is written leaves behind (nothing: no table, no temporary file with names in it)."""

from __future__ import annotations

import contextlib
import errno
import gc
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import xlsxwriter.packager
from openpyxl import load_workbook

from certgen.exceptions import DiskFull
from certgen.issuing import reports
from certgen.issuing.reports import write_table

ID = "21010219800101001X"
ROWS = [[f"姓名{i}", "201", ID, "车工" * 20, i] for i in range(300)]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder the spreadsheet writer uses, empty."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


class _Filling:
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, fh: BinaryIO, room: int) -> None:
        self._fh, self._room = fh, room

    def write(self, data: bytes) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def test_a_full_disk_under_the_spreadsheet_is_a_full_disk_and_leaves_nothing(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = reports.atomic_write

    @contextlib.contextmanager
    def filling(path: Path, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(path, *args, **kwargs) as fh:
            yield _Filling(fh, 2000) if path.suffix == ".xlsx" else fh

    monkeypatch.setattr(reports, "atomic_write", filling)
    out = tmp_path / "out"
    with pytest.raises(DiskFull, match=r"磁盘已满：无法写入 .*证书数据表"):
        write_table(out, "证书数据表", [], ["姓名", "类型", "证件号码", "职业", "序号"], ROWS)
    assert list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []  # the rows with the ID numbers are not left in /tmp


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_while_the_spreadsheet_is_zipped_leaves_nothing(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(xlsxwriter.packager.Packager, "_write_styles_file", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        write_table(out, "证书数据表", [], ["姓名", "类型", "证件号码", "职业", "序号"], ROWS)
    gc.collect()  # the half-written zip was closed while its file was open: nothing is printed now
    assert list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_every_kind_of_value_is_written_as_text_number_or_nothing(tmp_path: Path, scratch: Path) -> None:
    class Other:
        def __str__(self) -> str:
            return "其他"

    row = ["文字", "=1+1", "", None, 3, 2.5, True, math.nan, math.inf, Other(), "0012"]
    (xlsx, _) = write_table(tmp_path, "表", [["标题"]], [f"列{i}" for i in range(len(row))], [row])
    sheet = load_workbook(xlsx).active
    assert sheet is not None
    cells = next(iter(sheet.iter_rows(min_row=3, max_row=3)))
    assert [c.value for c in cells] == ["文字", "=1+1", None, None, 3, 2.5, True, "nan", "inf", "其他", "0012"]
    assert cells[1].data_type == "s" and cells[1].quotePrefix
    assert [c.number_format for c in cells[:3]] == ["@", "@", "@"]
    assert list(scratch.iterdir()) == []
