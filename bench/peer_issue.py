"""A straightforward peer of ``certkiosk issue``: the baseline bench/issue.py measures against.

    python bench/peer_issue.py ROSTER.csv PHOTOS OUT --home STATION --passphrase PASS

What a competent engineer writes in an afternoon: read the roster (the same parser), number the
rows, sign the same ZJ1 payload with the station's key, and draw the same page with reportlab and
the bundled font (registered the ordinary way), a segno QR code (one rectangle per dark module)
and the photo file as it is. No register, no PDF/A, no checks beyond the record's own: it is the
floor of what issuing a certificate costs when nothing is promised. certkiosk verifies its PDFs
as valid (bench/issue.py checks a sample).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import segno  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from certgen.issuing.roster import read_roster  # noqa: E402
from certgen.number import format_number  # noqa: E402
from certgen.payload import sign  # noqa: E402
from certgen.pdf.fonts import bundled_font  # noqa: E402
from certgen.pdf.template import Template, load_template, placeholders  # noqa: E402
from certgen.record import CertificateRecord  # noqa: E402
from certgen.station.home import StationHome  # noqa: E402
from certgen.station.station import Station  # noqa: E402

FONT = "peer-wenkai"


def draw_page(path: Path, record: CertificateRecord, template: Template, qr_text: str) -> None:
    """The certificate's text, border, photo and QR code, as reportlab draws them plainly."""
    t = template
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(bundled_font().path)))
    values = placeholders(record)
    if not record.job_type:
        values["job_type"] = t.absent
    c = Canvas(str(path), pagesize=(t.page_w * mm, t.page_h * mm), initialFontName=FONT)
    c.setLineWidth(t.border_pt)
    c.rect(t.border.x * mm, (t.page_h - t.border.bottom) * mm, t.border.w * mm, t.border.h * mm)
    y = (t.page_h - t.title.box.y) * mm - 20
    for key in ("title", "body", "url"):
        c.setFont(FONT, getattr(t, key).size_pt)
        for line in getattr(t, key).text.format_map(values).split("\n"):
            c.drawString(t.body.box.x * mm, y, line)
            y -= 7 * mm
    c.setFont(FONT, t.info.size_pt)
    y = (t.page_h - t.info.box.y) * mm - 16
    for field, label in t.info.fields:
        c.drawString(t.info.box.x * mm, y, f"{label}：{values[field]}")
        y -= 7 * mm
    if record.photo is not None:
        p = t.photo
        c.drawImage(str(record.photo), p.x * mm, (t.page_h - p.bottom) * mm, p.w * mm, p.h * mm)
    qr = segno.make(qr_text, error="m", micro=False)
    matrix = list(qr.matrix_iter(border=0))
    module = t.qr.w * mm / len(matrix)
    top = (t.page_h - t.qr.y) * mm
    for r, row in enumerate(matrix):
        for col, dark in enumerate(row):
            if dark:
                c.rect(t.qr.x * mm + col * module, top - (r + 1) * module, module, module, stroke=0, fill=1)
    c.showPage()
    c.save()


def peer_issue(roster_path: Path, photos: Path, out: Path, station: Station, passphrase: str) -> int:
    """Issue every row of the roster as the peer would; returns the number of PDFs written."""
    template = load_template("liaoning-2020", station.home.root / "templates")
    out.mkdir(parents=True, exist_ok=True)
    with station.register() as reg:
        keys = {}
        written = 0
        for serial, row in enumerate(read_roster(roster_path).rows, 1):
            fields = dict(row.fields)
            if fields.get("photo"):
                fields["photo"] = str(photos / str(fields["photo"]))
            record = CertificateRecord.from_fields(fields)
            info = reg.signing_key(None, record.issue_date)
            if info.kid not in keys:
                keys[info.kid] = station.keystore.load(info.kid, passphrase)
            number = format_number(info.filing_number, record.issue_date.year, record.level, 900_000 + serial)
            record = record.replace(evaluator=info.institution, issuer=info.institution).with_number(number)
            signed = sign(record, template.id, keys[info.kid], info.kid)
            draw_page(out / f"{number}.pdf", record, template, signed.text)
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roster", type=Path)
    parser.add_argument("photos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--passphrase", required=True)
    args = parser.parse_args()
    station = Station(StationHome(args.home, "--home"))
    print(peer_issue(args.roster, args.photos, args.out, station, args.passphrase), "PDFs written")


if __name__ == "__main__":
    main()
