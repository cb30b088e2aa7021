"""Sign a finished certificate PDF: PAdES baseline B-B (ETSI EN 319 142-1) with pyHanko.

The signature is added as an incremental update after the PDF/A finishing, so everything the
finishing wrote (XMP, OutputIntent, attachment) is covered. Its visible appearance is the
institution's seal (an image, no text: no font to embed, so the file stays PDF/A-3b), placed
where the template's ``[seal]`` box is. With a time-stamping URL (RFC 3161) the signature gets a
signature time-stamp (PAdES B-T); offline stations have none, and the signing time is then the
signer's own claim.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certgen.exceptions import SigningError
from certgen.pdf.template import Box

SIGNATURE_FIELD = "证书印章"
"""Name of the signature field (shown in a reader's signature panel)."""


@dataclass(frozen=True)
class SealAppearance:
    """Where and how the seal is drawn as the signature's appearance."""

    png: bytes
    """The seal as an RGBA PNG (checked by :func:`certgen.pdf.seal.prepare_seal`)."""
    box: Box
    """The template's seal box, mm from the page's top-left corner."""
    page_h_mm: float
    """Page height, to turn the box into PDF coordinates."""


def sign_pdf(
    pdf: bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    certificate: bytes,
    seal: SealAppearance | None,
    reason: str,
    location: str | None = None,
    tsa_url: str | None = None,
) -> bytes:
    """``pdf`` with a PAdES signature by ``key`` (``certificate`` is its DER certificate)."""
    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko.stamp import StaticStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore(),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason, location=location,
    )  # fmt: skip
    box: tuple[int, int, int, int] | None = None
    style = None
    if seal is not None:
        from PIL import Image

        mm = 72 / 25.4
        b = seal.box
        x0, y0 = round(b.x * mm), round((seal.page_h_mm - b.bottom) * mm)
        box = (x0, y0, x0 + round(b.w * mm), y0 + round(b.h * mm))
        with Image.open(io.BytesIO(seal.png)) as img:
            img.load()
            image = PdfImage(img.convert("RGBA"), writer=None)
        style = StaticStampStyle(
            background=image, border_width=0, background_opacity=1.0,
            background_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins.uniform(0),  # type: ignore[no-untyped-call]
            ),
        )  # fmt: skip
    spec = fields.SigFieldSpec(SIGNATURE_FIELD, on_page=0, box=box)
    timestamper = timestamps.HTTPTimeStamper(tsa_url) if tsa_url else None
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=timestamper, stamp_style=style, new_field_spec=spec)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = io.BytesIO()
    try:
        pdf_signer.sign_pdf(writer, output=out)
    except (OSError, ValueError, PdfError) as exc:  # a failed time-stamp request is an OSError
        raise SigningError(f"PDF签名失败：{exc}") from None
    return out.getvalue()
