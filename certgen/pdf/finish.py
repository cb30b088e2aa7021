"""Finish reportlab's PDF with pikepdf: archival (PDF/A-3b) metadata, correct text extraction,
and the certificate's record and QR text embedded as an attached file.

Why PDF/A-3b and not -2b: PDF/A-2 allows only PDF/A files as attachments, while the record is
JSON. PDF/A-3 is PDF/A-2 plus arbitrary associated files (``/AF``, ``AFRelationship /Data``),
which is what this is (the same approach as ZUGFeRD / Factur-X invoices).
"""

from __future__ import annotations

import datetime as _dt
import functools
import io
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import pikepdf
from pikepdf import Array, Dictionary, Name, String
from PIL import ImageCms

from certgen.payload import ATTACHMENT_NAME
from certgen.pdf import flate

ATTACHMENT_FORMAT = "certkiosk-certificate/1"
_BFCHAR = re.compile(rb"<([0-9A-Fa-f]{2,4})> <([0-9A-Fa-f]{5,6})>")


@dataclass(frozen=True)
class CertificateMeta:
    """What goes into the document's metadata and attachment."""

    number: str
    """证书编号."""
    institution: str
    """评价机构 name."""
    filing_number: str
    """The institution's filing number."""
    issue_date: _dt.date
    """发证日期."""
    record: dict[str, Any]
    """The record's fields (``CertificateRecord.to_dict()``)."""
    qr_text: str
    """The signed QR text."""
    template: str
    """The template id."""
    form: str = "paper"
    """``paper`` or ``electronic`` (an electronic certificate is signed after finishing)."""


def _utf16_pair(match: re.Match[bytes]) -> bytes:
    code = int(match.group(2), 16)
    return b"<" + match.group(1) + b"> <" + chr(code).encode("utf-16-be").hex().upper().encode() + b">"


def fix_to_unicode(pdf: pikepdf.Pdf) -> int:
    """Rewrite ToUnicode entries reportlab writes as 5-6 hex digits (code points outside the BMP)
    as UTF-16BE surrogate pairs, so that text extraction gives back e.g. 𫖯. Returns entries fixed."""
    fixed = 0
    for font in _page_fonts(pdf):
        cmap = font.get(Name.ToUnicode)
        if not isinstance(cmap, pikepdf.Stream):
            continue
        new, count = _BFCHAR.subn(_utf16_pair, cmap.read_bytes())
        if count:
            cmap.write(flate.compress(new), filter=Name.FlateDecode)
            fixed += count
    return fixed


def _font_dicts(page: pikepdf.Page) -> pikepdf.Dictionary | None:
    resources = page.obj.get(Name.Resources)
    if not isinstance(resources, pikepdf.Dictionary):
        return None
    fonts = resources.get(Name.Font)
    return fonts if isinstance(fonts, pikepdf.Dictionary) else None


def _page_fonts(pdf: pikepdf.Pdf) -> list[pikepdf.Object]:
    found: list[pikepdf.Object] = []
    for page in pdf.pages:
        fonts = _font_dicts(page)
        if fonts is not None:
            found.extend(fonts[key] for key in fonts.keys())  # noqa: SIM118 - a pikepdf Dictionary
    return found


def _require_embedded_fonts(pdf: pikepdf.Pdf) -> None:
    """PDF/A needs every font embedded; reportlab embeds TrueType subsets, so this only guards."""
    for font in _page_fonts(pdf):
        descriptor = font.get(Name.FontDescriptor)
        if not isinstance(descriptor, pikepdf.Dictionary) or not any(
            key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
        ):
            raise ValueError(f"字体 {font.get(Name.BaseFont)} 未嵌入：不能生成 PDF/A")


@functools.cache
def _srgb_profile() -> bytes:
    """The sRGB ICC profile, Flate-compressed (made once per process)."""
    data: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return zlib.compress(data)


XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="certkiosk">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>
   <dc:subject><rdf:Bag>{subjects}</rdf:Bag></dc:subject>
   <dc:date><rdf:Seq><rdf:li>{date}</rdf:li></rdf:Seq></dc:date>
   <pdf:Producer>certkiosk</pdf:Producer>
   <pdf:Keywords>{keywords}</pdf:Keywords>
   <xmp:CreatorTool>certkiosk</xmp:CreatorTool>
   <xmp:CreateDate>{now}</xmp:CreateDate>
   <xmp:ModifyDate>{now}</xmp:ModifyDate>
   <xmp:MetadataDate>{now}</xmp:MetadataDate>
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
"""The document's XMP (PDF/A-3b identification, Dublin Core), filled in with escaped values: what
pikepdf's metadata editor wrote, without parsing and re-serialising the packet per document."""


def xmp_packet(
    title: str, creator: str, description: str, subjects: tuple[str, ...], date: str, keywords: str, now: _dt.datetime
) -> bytes:
    """The XMP packet for one certificate (values XML-escaped)."""
    return XMP.format(
        title=escape(title), creator=escape(creator), description=escape(description),
        subjects="".join(f"<rdf:li>{escape(s)}</rdf:li>" for s in subjects), date=escape(date),
        keywords=escape(keywords), now=now.isoformat(),
    ).encode("utf-8")  # fmt: skip


def finish(pdf_bytes: bytes, meta: CertificateMeta, *, now: _dt.datetime | None = None) -> bytes:
    """Return the finished PDF: PDF/A-3b metadata and OutputIntent, fixed ToUnicode, attachment."""
    now = now or _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        fix_to_unicode(pdf)
        _require_embedded_fonts(pdf)

        icc = pdf.make_stream(_srgb_profile(), Filter=Name.FlateDecode, N=3)
        pdf.Root.OutputIntents = Array([
            Dictionary(
                Type=Name.OutputIntent, S=Name.GTS_PDFA1, OutputConditionIdentifier=String("sRGB"),
                Info=String("sRGB IEC61966-2.1"), DestOutputProfile=icc,
            )
        ])  # fmt: skip
        pdf.Root.Lang = String("zh-CN")

        payload = json.dumps(
            {
                "format": ATTACHMENT_FORMAT, "number": meta.number, "template": meta.template,
                "institution": {"name": meta.institution, "filing_number": meta.filing_number},
                "record": meta.record, "qr_text": meta.qr_text, "form": meta.form,
            },
            ensure_ascii=False, indent=1, sort_keys=True,
        ).encode("utf-8")  # fmt: skip
        stamp = now.strftime("D:%Y%m%d%H%M%SZ")
        spec = pikepdf.AttachedFileSpec(
            pdf, payload, description="证书记录与二维码内容（机器可读）", filename=ATTACHMENT_NAME,
            mime_type="application/json", creation_date=stamp, mod_date=stamp,
            relationship=Name.Data,  # type: ignore[call-arg]  # pikepdf >= 8 accepts it; its stubs lag
        )  # fmt: skip
        spec.obj.EF.F.write(flate.compress(payload), filter=Name.FlateDecode)
        pdf.attachments[ATTACHMENT_NAME] = spec
        pdf.Root.AF = Array([spec.obj])

        title = f"职业技能等级证书 {meta.number}"
        description = f"{meta.institution}（{meta.filing_number}）于{meta.issue_date.isoformat()}颁发"
        keywords = f"{meta.number} {meta.filing_number}"
        subjects = (meta.number, meta.filing_number, meta.institution, meta.issue_date.isoformat())
        pdf.Root.Metadata = pdf.make_stream(
            xmp_packet(title, meta.institution, description, subjects, meta.issue_date.isoformat(), keywords, now)
        )
        pdf.Root.Metadata.Type, pdf.Root.Metadata.Subtype = Name.Metadata, Name.XML
        stamp = now.strftime("D:%Y%m%d%H%M%S+00'00")
        pdf.trailer.Info = pdf.make_indirect(
            Dictionary(
                Title=String(title), Author=String(meta.institution), Subject=String(description),
                Keywords=String(keywords), Creator=String("certkiosk"), Producer=String("certkiosk"),
                CreationDate=String(stamp), ModDate=String(stamp), Trapped=Name("/False"),
            )
        )  # fmt: skip
        out = io.BytesIO()
        # Streams are copied as reportlab compressed them, not decoded and compressed again, and the
        # ones made here are compressed above (qpdf's own pass over every stream cost ~1.8 ms); the
        # XMP packet stays uncompressed, as PDF/A readers expect.
        pdf.save(
            out, fix_metadata_version=False, deterministic_id=True,
            object_stream_mode=pikepdf.ObjectStreamMode.generate, stream_decode_level=pikepdf.StreamDecodeLevel.none,
            recompress_flate=False, compress_streams=False,
        )  # fmt: skip
        return out.getvalue()


def read_attachment(pdf_bytes: bytes) -> dict[str, Any] | None:
    """The embedded certificate record of one of our PDFs, or None when there is none."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        spec = pdf.attachments.get(ATTACHMENT_NAME)
        if spec is None:
            return None
        data: dict[str, Any] = json.loads(spec.get_file().read_bytes())
        return data
