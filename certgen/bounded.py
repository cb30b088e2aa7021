"""Read input files within limits decided before the work: regular files only, bytes capped.

Pure (standard library). A FIFO, a device or a socket is never opened for reading (it could block
forever or never end); a file is read in chunks and refused as soon as it passes its limit, so
memory stays bounded whatever the input claims about its size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Protocol

from certgen.cells import shown
from certgen.exceptions import InputRefused

CHUNK = 1024 * 1024


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


KIND_TEXT = {
    stat.S_IFIFO: "命名管道（FIFO）",
    stat.S_IFCHR: "字符设备",
    stat.S_IFBLK: "块设备",
    stat.S_IFSOCK: "套接字",
    stat.S_IFDIR: "文件夹",
}


def kind_of(mode: int) -> str | None:
    """None for a regular file, else what it is, in Chinese."""
    if stat.S_ISREG(mode):
        return None
    return KIND_TEXT.get(stat.S_IFMT(mode), "特殊文件")


def read_stream(stream: IO[bytes], limit: int, what: str, hasher: _Hasher | None = None) -> bytes:
    """Every byte of ``stream``, refused (InputRefused) once more than ``limit`` have come."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise InputRefused(f"{what} 过大：超过上限 {limit} 字节，未读完即停止")
        if hasher is not None:
            hasher.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


def read_regular(path: Path, limit: int, hasher: _Hasher | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); InputRefused for anything else.

    The kind is checked with stat before opening, and again on the open descriptor (the path
    could have been swapped in between); opening uses O_NONBLOCK so that even then a FIFO cannot
    block.
    """
    name = shown(str(path))
    try:
        kind = kind_of(os.stat(path).st_mode)
        if kind is not None:
            raise InputRefused(f"{name} 是{kind}，不是普通文件：未读取")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputRefused(f"无法读取 {name}：{exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as stream:
        st = os.fstat(fd)
        kind = kind_of(st.st_mode)
        if kind is not None:
            raise InputRefused(f"{name} 是{kind}，不是普通文件：未读取")
        if st.st_size > limit:
            raise InputRefused(f"{name} 过大：{st.st_size} 字节，上限 {limit} 字节")
        try:
            return read_stream(stream, limit, name, hasher)
        except OSError as exc:
            raise InputRefused(f"无法读取 {name}：{exc.strerror or exc}") from None


__all__ = ["CHUNK", "kind_of", "read_regular", "read_stream"]
