"""Hostile inputs built by hand for the verify tests (issue 11)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path


def pdf_with_mediabox(width: float, height: float, content: bytes = b"0 0 0 rg 10 10 50 50 re f") -> bytes:
    """A tiny valid PDF with one page of the given MediaBox (points), xref offsets computed."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] /Contents 4 0 R >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def crc_forcing_suffix(data: bytes, wanted: int) -> bytes:
    """Four bytes that, appended to ``data``, make its CRC-32 equal ``wanted`` (CRC-32 is affine
    over GF(2), so this is a 32x32 linear system: forging it is trivial)."""
    base = zlib.crc32(b"\0\0\0\0", zlib.crc32(data))
    columns = []
    for bit in range(32):
        probe = (1 << bit).to_bytes(4, "little")
        columns.append(zlib.crc32(probe, zlib.crc32(data)) ^ base)
    target = wanted ^ base
    # Gaussian elimination: find x with XOR of columns[i] for set bits i == target.
    rows = [(columns[i], 1 << i) for i in range(32)]
    basis: list[tuple[int, int]] = []
    for vec, combo in rows:
        for bvec, bcombo in basis:
            if vec ^ bvec < vec:
                vec, combo = vec ^ bvec, combo ^ bcombo
        if vec:
            basis.append((vec, combo))
            basis.sort(reverse=True)
    x = 0
    for bvec, bcombo in basis:
        if target ^ bvec < target:
            target, x = target ^ bvec, x ^ bcombo
    assert target == 0, "CRC-32 forcing failed"
    suffix = x.to_bytes(4, "little")
    assert zlib.crc32(data + suffix) == wanted
    return suffix


def forge_same_size_and_crc(original: bytes, forged: bytes) -> bytes:
    """``forged`` padded (trailing bytes, which image readers ignore) to the size of ``original``
    and with the same CRC-32."""
    room = len(original) - 4 - len(forged)
    assert room >= 0, "make the original longer"
    body = forged + b"\0" * room
    return body + crc_forcing_suffix(body, zlib.crc32(original))


def zip_with_member_of(path: Path, name: str, size: int, chunk: int = 1 << 20) -> None:
    """A ZIP holding one member of ``size`` zero bytes, written in chunks (deflated: small on disk)."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(zipfile.ZipInfo(name), "w", force_zip64=True) as member,
    ):
        left = size
        block = b"\0" * chunk
        while left > 0:
            member.write(block[: min(chunk, left)])
            left -= chunk
