"""certgen.pdf.flate writes the zlib format: Python's zlib (an independent implementation) inflates
it back, and a certificate's PDF streams inflate in qpdf (through pikepdf)."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import pikepdf
import pytest

from certgen.issuing.issuer import Issuer
from certgen.pdf import flate
from tests.conftest import make_record


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"0 0 1 1 re\n" * 5000, os.urandom(70_000), "职业技能等级证书".encode() * 2000],
    ids=["empty", "one byte", "page operators", "random", "utf-8 text"],
)
def test_zlib_inflates_what_flate_writes(data: bytes) -> None:
    packed = flate.compress(data)
    assert zlib.decompress(packed) == data
    assert packed[0] & 0x0F == 8  # the zlib header's method: deflate


def _filters(stream: pikepdf.Stream) -> list[str]:
    found = stream.get("/Filter")
    return [str(f) for f in found] if isinstance(found, pikepdf.Array) else [str(found)]


def test_a_certificate_s_streams_inflate(issuer: Issuer, photo_dir: Path) -> None:
    with issuer.station.register() as reg:
        issued = issuer.issue(reg, make_record(photo=photo_dir / "p0.jpg"))
    with pikepdf.open(io.BytesIO(issued.path.read_bytes())) as pdf:
        flated = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and _filters(o) == ["/FlateDecode"]]
        assert len(flated) >= 5  # the font subset, the page, ToUnicode, the colour profile, the attachment
        for stream in flated:
            raw = stream.read_raw_bytes()
            assert zlib.decompress(raw) == stream.read_bytes()
