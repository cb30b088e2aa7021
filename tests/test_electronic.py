"""Electronic certificates: PAdES signature with the seal, PDF/A after signing, and verify's
signature checks, cross-checked on every genuine and altered file by pyHanko's own validator
(``validate_pdf_signature`` with the institution's certificate as the only trust root)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from certgen.docsign import read_certificate
from certgen.exceptions import CertkioskError, SealError
from certgen.issuing.issuer import Issued, Issuer
from certgen.payload import decode
from certgen.pdf.seal import prepare_seal
from certgen.pdf.sign import sign_pdf
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import PublicKeyInfo
from tests.conftest import FILING, INSTITUTION, PASSPHRASE, make_record, resident_id
from verify.files import verify_bytes
from verify.reasons import Reason

OTHER_FILING = "Y001121011001"


@dataclass
class Setup:
    station: Station
    key: PublicKeyInfo
    issued: Issued
    both: Issued
    photo_dir: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path) -> Setup:
    """One station, a key valid 30 years; one electronic certificate and one made in both forms."""
    home = StationHome(tmp_path_factory.mktemp("electronic") / "home", "--home").ensure()
    station = Station(home)
    key, _ = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=30)
    out = home.root / "out"
    electronic = Issuer(station, PASSPHRASE, out_dir=out, forms=("electronic",), sample_seal=True)
    both = Issuer(station, PASSPHRASE, out_dir=out, forms=("paper", "electronic"), sample_seal=True)
    with station.register() as reg:
        one = electronic.issue(reg, make_record(photo=photo_dir / "p0.jpg"))
        two = both.issue(reg, make_record(name="李四", id_number=resident_id(2), photo=photo_dir / "p1.jpg"))
    return Setup(station, key, one, two, photo_dir)


def test_an_electronic_only_run_settles_its_publishing_entry(setup: Setup) -> None:
    # the run ends by making its renames durable and forgetting their entries; an electronic-only
    # certificate has no <number>.pdf, and its entry is settled by its form's file all the same
    out = setup.issued.path.parent.parent
    issuer = Issuer(setup.station, PASSPHRASE, out_dir=out, forms=("electronic",), sample_seal=True)
    with setup.station.register() as reg:
        issued = issuer.issue(reg, make_record(name="王五", id_number=resident_id(5)))
        assert issued.path.name.endswith("-e.pdf") and issued.path.is_file()
        assert reg.unpublished() == []


def certkiosk(setup: Setup, data: bytes, name: str = "x.pdf") -> tuple[str, tuple[Reason, ...], object]:
    results = verify_bytes(data, name, setup.station.trust.load())
    assert len(results) == 1
    return results[0].status, results[0].reasons, results[0].pdf_signature


def pyhanko_says_valid(data: bytes, certificate: bytes, tsa: bytes | None = None) -> bool:
    """pyHanko alone: a signature, intact, valid, trusted to the institution's certificate (and the
    time-stamping authority's, if given), and nothing but validation data after it."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    if not reader.embedded_signatures:
        return False
    roots = [asn1_x509.Certificate.load(der) for der in (certificate, tsa) if der is not None]
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    level = status.modification_level
    return bool(status.bottom_line) and level is not None and level <= ModificationLevel.LTA_UPDATES


def unsigned_revision(data: bytes) -> bytes:
    """The file as it was before the signature's incremental update (its first revision)."""
    end = data.index(b"%%EOF") + len(b"%%EOF")
    return data[: end + 1] if data[end : end + 1] == b"\n" else data[:end]


# --- genuine files ----------------------------------------------------------------------------
def test_a_genuine_electronic_certificate_is_valid_for_certkiosk_and_pyhanko(setup: Setup) -> None:
    data = setup.issued.path.read_bytes()
    status, reasons, facts = certkiosk(setup, data)
    assert (status, reasons) == ("valid", ())
    assert facts is not None and facts.present and facts.intact and facts.whole_file  # type: ignore[attr-defined]
    assert facts.signer.kid == setup.key.kid  # type: ignore[attr-defined]
    assert setup.key.x509 is not None and pyhanko_says_valid(data, setup.key.x509)
    both = setup.both.files["electronic"].read_bytes()  # the electronic copy made with a paper one
    assert certkiosk(setup, both)[:2] == ("valid", ()) and pyhanko_says_valid(both, setup.key.x509)
    assert decode(setup.issued.qr_text).claims.form == "electronic"
    assert setup.issued.path.name.endswith("-e.pdf")


def test_the_signed_file_is_still_pdfa_3b(setup: Setup) -> None:
    path = setup.issued.path
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with pikepdf.open(path) as pdf:
        assert pdf.open_metadata().pdfa_status == "3B"
        assert pdf.Root.OutputIntents[0].S == "/GTS_PDFA1"
        for _, font in pdf.pages[0].Resources.Font.items():
            assert "/FontFile2" in font.FontDescriptor
        field = pdf.Root.AcroForm.Fields[0]
        assert field.FT == "/Sig" and field.V.SubFilter == "/ETSI.CAdES.detached"  # PAdES
        assert int(field.F) & 4 and not int(field.F) & (1 | 2 | 32)  # printable, not hidden (PDF/A)
        assert "/NeedAppearances" not in pdf.Root.AcroForm
        appearance = field.AP.N
        assert "/Font" not in appearance.Resources  # the seal is an image: no font to embed
        (image,) = (x for _, x in appearance.Resources.XObject.items())
        assert image.Subtype == "/Image" and "/SMask" in image  # the seal's transparency
        rect = [float(v) for v in field.Rect]
        assert round((rect[2] - rect[0]) / 72 * 25.4) == 40  # the template's 40 mm seal box
        # the signature's own revision changes nothing of the page but its annotation
        assert b"%PDF-" in path.read_bytes()[:8]


def test_paper_and_electronic_forms_share_the_number_and_the_register_records_both(setup: Setup) -> None:
    both = setup.both
    assert set(both.files) == {"paper", "electronic"}
    number = str(both.record.number)
    assert both.files["paper"].name == f"{number}.pdf" and both.files["electronic"].name == f"{number}-e.pdf"
    paper = both.files["paper"].read_bytes()
    status, reasons, facts = certkiosk(setup, paper)
    assert (status, reasons) == ("valid", ()) and facts is not None and not facts.present  # type: ignore[attr-defined]
    assert certkiosk(setup, both.files["electronic"].read_bytes())[:2] == ("valid", ())
    with setup.station.register() as reg:
        assert set(reg.forms(number)) == {"paper", "electronic"}
        assert set(reg.forms(str(setup.issued.record.number))) == {"electronic"}
        assert reg.check() == []
    with pikepdf.open(both.files["paper"]) as pdf:
        assert "/AcroForm" not in pdf.Root


def test_the_electronic_form_carries_the_templates_marking(setup: Setup) -> None:
    import pypdfium2

    def text(path: Path) -> str:
        page = pypdfium2.PdfDocument(str(path))[0]
        return "".join(page.get_textpage().get_text_range().split())

    marking = setup.both.files["electronic"]
    assert "电子证书" in text(marking)
    assert "电子证书" not in text(setup.both.files["paper"])


# --- alterations --------------------------------------------------------------------------------
def _page(writer: IncrementalPdfFileWriter) -> generic.DictionaryObject:
    return writer.root["/Pages"]["/Kids"][0].get_object()  # type: ignore[no-any-return]


def swap_photo(data: bytes, jpeg: bytes) -> bytes:
    """An incremental update replacing the photo image with another JPEG."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    xobjects = _page(writer)["/Resources"]["/XObject"]
    name = next(n for n, ref in xobjects.items() if ref.get_object().get("/Subtype") == "/Image")
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as image:
        width, height = image.size
    header = {
        "/Type": "/XObject", "/Subtype": "/Image", "/Width": width, "/Height": height,
        "/ColorSpace": "/DeviceRGB", "/BitsPerComponent": 8, "/Filter": "/DCTDecode",
    }  # fmt: skip
    new = generic.StreamObject(
        {generic.NameObject(k): generic.NameObject(v) if isinstance(v, str) else generic.NumberObject(v)
         for k, v in header.items()},
        encoded_data=jpeg,
    )  # fmt: skip
    xobjects[name] = writer.add_object(new)
    writer.update_container(xobjects)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def change_name(data: bytes) -> bytes:
    """An incremental update rewriting the page so the 姓名 line shows the occupation's characters."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    page = _page(writer)
    stream = page["/Contents"].get_object()
    content = stream.data
    lines = re.findall(rb"BT 1 0 0 1 462\.0472 [0-9.]+ Tm .*? Tj", content)
    name_line, occupation_line = lines[0], lines[2]
    codes = re.compile(rb"((?:\\[0-7]{3}){2})\) Tj")
    name_codes = codes.search(name_line)
    occupation_codes = codes.search(occupation_line)
    assert name_codes and occupation_codes and name_codes.group(1) != occupation_codes.group(1)
    changed = name_line.replace(name_codes.group(1), occupation_codes.group(1))
    new = generic.StreamObject(stream_data=content.replace(name_line, changed))
    page["/Contents"] = writer.add_object(new)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _other_station(tmp_path: Path, filing: str, institution: str) -> tuple[Station, PublicKeyInfo]:
    station = Station(StationHome(tmp_path / filing, "--home").ensure())
    key, _ = station.new_key(filing, institution, PASSPHRASE, valid_from=dt.date(2020, 1, 1), years=30)
    return station, key


def resign(data: bytes, station: Station, key: PublicKeyInfo) -> bytes:
    assert key.x509 is not None
    private = station.keystore.load_x509_key(key.kid, PASSPHRASE)
    return sign_pdf(unsigned_revision(data), key=private, certificate=key.x509, seal=None, reason="伪造")


def leave_a_gap(data: bytes, station: Station, key: PublicKeyInfo) -> bytes:
    """A signature by the genuine key whose byte range leaves the 8 bytes after /Contents out: the
    CMS signature itself is valid over what the byte range names, so those bytes could be anything."""
    from asn1crypto import keys as asn1_keys
    from cryptography.hazmat.primitives import serialization
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    match = re.search(rb"/ByteRange \[0 (\d+) (\d+) (\d+)\] *", data)
    assert match is not None
    a, b, c = (int(g) for g in match.groups())
    gap = 8
    new_range = f"/ByteRange [0 {a} {b + gap} {c - gap}]".encode().ljust(len(match.group(0)))
    data = data[: match.start()] + new_range + data[match.end() :]
    digest = hashlib.sha256(data[:a] + data[b + gap : b + gap + c - gap]).digest()
    assert key.x509 is not None
    private = station.keystore.load_x509_key(key.kid, PASSPHRASE)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(key.x509),
        signing_key=asn1_keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore(),
    )
    cms = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True)).dump().hex().encode()
    start, end = a + 1, b - 1  # inside the < > of /Contents
    assert len(cms) <= end - start
    return data[:start] + cms.ljust(end - start, b"0") + data[end:]


def strip_signature(data: bytes) -> bytes:
    """The signature field and its widget removed, the file saved anew (not incrementally)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        del pdf.Root.AcroForm
        del pdf.pages[0].obj.Annots
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


@pytest.mark.parametrize(
    ("alteration", "expected"),
    [
        ("photo swapped", {Reason.PDF_CHANGED_AFTER_SIGNING}),
        ("name changed", {Reason.PDF_CHANGED_AFTER_SIGNING}),
        ("re-signed by an untrusted key", {Reason.PDF_SIGNER_UNTRUSTED}),
        ("re-signed by another trusted institution", {Reason.PDF_SIGNER_MISMATCH}),
        ("byte range with a gap", {Reason.PDF_CHANGED_AFTER_SIGNING}),
        ("signature removed (first revision)", {Reason.PDF_SIGNATURE_MISSING}),
        ("signature removed (field deleted)", {Reason.PDF_SIGNATURE_MISSING}),
        ("signed bytes changed", {Reason.PDF_SIGNATURE_INVALID}),
    ],
)
def test_every_alteration_has_its_reason_and_pyhanko_agrees(
    setup: Setup, tmp_path: Path, alteration: str, expected: set[Reason]
) -> None:
    genuine = setup.issued.path.read_bytes()
    assert setup.key.x509 is not None
    if alteration == "photo swapped":
        altered = swap_photo(genuine, (setup.photo_dir / "p3.jpg").read_bytes())
    elif alteration == "name changed":
        altered = change_name(genuine)
    elif alteration == "re-signed by an untrusted key":
        other, key = _other_station(tmp_path, OTHER_FILING, INSTITUTION)
        altered = resign(genuine, other, key)
    elif alteration == "re-signed by another trusted institution":
        other, key = _other_station(tmp_path, OTHER_FILING, "另一家评价机构有限公司")
        trust = setup.station.trust
        before = trust.path.read_bytes()
        trust.save(trust.load().with_key(key))
        try:
            altered = resign(genuine, other, key)
            status, reasons, _ = certkiosk(setup, altered)
        finally:
            trust.path.write_bytes(before)
        assert status == "invalid" and set(reasons) == expected
        assert not pyhanko_says_valid(altered, setup.key.x509)
        return
    elif alteration == "byte range with a gap":
        altered = leave_a_gap(genuine, setup.station, setup.key)
    elif alteration == "signature removed (first revision)":
        altered = unsigned_revision(genuine)
    elif alteration == "signature removed (field deleted)":
        altered = strip_signature(genuine)
    else:
        altered = _flip_in_signed_stream(genuine)
    status, reasons, _ = certkiosk(setup, altered)
    assert status == "invalid", alteration
    assert expected <= set(reasons), (alteration, reasons)
    assert not pyhanko_says_valid(altered, setup.key.x509)


def _flip_in_signed_stream(data: bytes) -> bytes:
    """One digit of the signature dictionary's /M time (inside the signed range) changed in place."""
    at = data.index(b"/M (D\\072") + len(b"/M (D\\072") + 3  # the year's last digit
    digit = b"1" if data[at : at + 1] != b"1" else b"2"
    return data[:at] + digit + data[at + 1 :]


def test_a_scan_of_a_printed_electronic_certificate_verifies_by_its_qr_code(setup: Setup) -> None:
    import pypdfium2

    page = pypdfium2.PdfDocument(str(setup.issued.path))[0]
    image = page.render(scale=200 / 72).to_pil()
    scanned = io.BytesIO()
    image.convert("RGB").save(scanned, "PDF", resolution=200)  # a scanner's image-only PDF
    status, reasons, facts = certkiosk(setup, scanned.getvalue(), "scan.pdf")
    assert (status, reasons) == ("valid", ()) and facts is not None and not facts.present  # type: ignore[attr-defined]


# --- the signing certificate ------------------------------------------------------------------
def test_the_signing_certificate_names_the_institution_and_the_qr_key(setup: Setup) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    assert setup.key.x509 is not None
    cert = x509.load_der_x509_certificate(setup.key.x509)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == INSTITUTION
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == FILING
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36") in eku and ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert read_certificate(setup.key.x509).kid == setup.key.kid
    path = setup.station.keystore.x509_key_path(setup.key.kid)
    assert path.stat().st_mode & 0o777 == 0o600 and b"ENCRYPTED" in path.read_bytes()
    exported = setup.station.trust.load().key(setup.key.kid)
    assert exported is not None and exported.x509 == setup.key.x509


def test_the_signed_trust_bundle_carries_the_certificate_a_verifier_needs(setup: Setup, tmp_path: Path) -> None:
    """A verifying station that knows the institution only from its signed trust bundle checks the
    PDF signature too: the bundle carries the key's document-signing certificate."""
    import json

    bundle = tmp_path / "bundle.json"
    setup.station.export_trust(bundle, PASSPHRASE)
    assert setup.key.x509 is not None
    body = json.loads(base64.b64decode(json.loads(bundle.read_bytes())["body"]))  # the signed body
    assert base64.b64encode(setup.key.x509).decode() in [key.get("x509") for key in _keys_in(body)]
    verifier = Station(StationHome(tmp_path / "verifier", "--home").ensure())
    verifier.import_trust(bundle)
    trusted = verifier.trust.load().key(setup.key.kid)
    assert trusted is not None and trusted.x509 == setup.key.x509
    results = verify_bytes(setup.issued.path.read_bytes(), "e.pdf", verifier.trust.load())
    assert (results[0].status, results[0].reasons) == ("valid", ())
    assert results[0].pdf_signature is not None and results[0].pdf_signature.signer.kid == setup.key.kid  # type: ignore[attr-defined]


def test_keys_x509_exports_the_certificate_a_pdf_readers_user_adds(setup: Setup, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kiosk.cli import cli

    out = CliRunner().invoke(cli, ["--home", str(setup.station.home.root), "keys", "x509", "--export", str(tmp_path)])
    assert out.exit_code == 0, out.output
    [cer] = tmp_path.glob("*.cer")
    assert setup.key.x509 is not None and cer.read_bytes() == setup.key.x509
    assert cer.name.startswith(FILING) and read_certificate(setup.key.x509).sha256 in out.output


def _keys_in(doc: object) -> list[dict[str, object]]:
    """Every key object (a dict with a ``kid``) anywhere in a bundle's JSON."""
    if isinstance(doc, dict):
        found = [doc] if "kid" in doc else []
        return found + [k for v in doc.values() for k in _keys_in(v)]
    if isinstance(doc, list):
        return [k for v in doc for k in _keys_in(v)]
    return []


def test_keys_x509_gives_an_older_key_its_certificate(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, info = keyed_station
    # a key as made before electronic certificates: no document-signing key or certificate
    station.keystore.x509_key_path(info.kid).unlink()
    with station.register() as reg:
        reg._db.execute("DELETE FROM key_certificates")  # the state of a register from before
    trust = station.trust.load()
    station.trust.save(trust.with_key(info.with_x509(None)))
    with station.register() as reg:
        assert reg.institution_keys()[0].x509 is None
    issuer = Issuer(station, PASSPHRASE, forms=("electronic",), sample_seal=True)
    with station.register() as reg, pytest.raises(CertkioskError, match="certkiosk keys x509"):
        issuer.issue(reg, make_record())
    with station.register() as reg:
        assert reg.counts()["issued"] == 0 and reg.counts()["pending"] == 0
    done = station.add_x509(PASSPHRASE)
    assert [k.kid for k in done] == [info.kid]
    assert station.add_x509(PASSPHRASE) == []  # once only
    trusted = station.trust.load().key(info.kid)
    assert trusted is not None and trusted.x509 == done[0].x509


def test_rolling_the_key_over_makes_a_new_certificate(keyed_station: tuple[Station, PublicKeyInfo]) -> None:
    station, old = keyed_station
    new, previous = station.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2024, 1, 1))
    assert previous is not None and previous.x509 == old.x509
    assert new.x509 is not None and new.x509 != old.x509
    assert read_certificate(new.x509).kid == new.kid


# --- seals --------------------------------------------------------------------------------------
def test_seal_images_are_checked_when_loaded(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    def save(name: str, image: Image.Image, fmt: str = "PNG") -> Path:
        path = tmp_path / name
        image.save(path, fmt)
        return path

    white = Image.new("RGB", (500, 500), (255, 255, 255))
    ImageDraw.Draw(white).ellipse((20, 20, 480, 480), outline=(200, 0, 0), width=20)
    prepared = prepare_seal(save("white.png", white), 40)
    with Image.open(io.BytesIO(prepared.png)) as back:
        assert back.mode == "RGBA"
        assert back.getpixel((250, 250))[3] == 0  # the white background made transparent
        assert back.getpixel((30, 250))[3] == 255  # the red ring kept
    assert any("白色背景设为透明" in w for w in prepared.warnings)
    with pytest.raises(SealError, match="分辨率过低"):
        prepare_seal(save("small.png", Image.new("RGBA", (200, 200))), 40)
    with pytest.raises(SealError, match="正方形"):
        prepare_seal(save("wide.png", Image.new("RGBA", (800, 500))), 40)
    with pytest.raises(SealError, match="背景不是白色"):
        prepare_seal(save("blue.png", Image.new("RGB", (500, 500), (0, 0, 200))), 40)
    with pytest.raises(SealError, match="应为 PNG"):
        prepare_seal(save("seal.jpg", white, "JPEG"), 40)
    with pytest.raises(SealError, match="完全透明"):
        prepare_seal(save("empty.png", Image.new("RGBA", (500, 500), (0, 0, 0, 0))), 40)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(SealError, match="不是可识别的图片"):
        prepare_seal(tmp_path / "notes.png", 40)


def test_the_sample_seal_is_red_round_and_says_sample() -> None:
    from PIL import Image

    from certgen.pdf.fonts import bundled_font
    from certgen.pdf.seal import sample_seal

    seal = sample_seal(INSTITUTION, bundled_font().path)
    with Image.open(io.BytesIO(seal.png)) as image:
        assert image.mode == "RGBA" and image.width == image.height
        assert image.getpixel((0, 0))[3] == 0  # transparent outside the ring
        ring = image.getpixel((image.width // 2, 20))
        assert ring[3] > 200 and ring[0] > 180 and ring[1] < 80  # red
    assert seal.source == "示例印章"


def test_checking_a_pdf_signature_imports_no_pdf_writer(setup: Setup) -> None:
    """verify's signature check runs pyHanko's validation, which must not pull in reportlab or pikepdf."""
    import json
    import sys

    code = (
        "import sys, json; from pathlib import Path; from certgen.trust import TrustStore; "
        "from verify.files import verify_bytes; "
        f"r = verify_bytes(Path({str(setup.issued.path)!r}).read_bytes(), 'x', TrustStore(Path("
        f"{str(setup.station.trust.path)!r})).load()); "
        "print(json.dumps([r[0].status, sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    status, modules = json.loads(out.stdout)
    assert status == "valid" and "pyhanko" in modules
    assert not {"reportlab", "pikepdf", "textual"} & set(modules)


# --- time-stamps ----------------------------------------------------------------------------------
TSA = Callable[[dt.datetime | None], tuple[str, bytes]]


def time_stamping_identity(common_name: str) -> tuple[bytes, bytes]:
    """A self-signed RSA certificate with extended key usage timeStamping (pyHanko's test TSA is
    RSA-only) and its private key: ``(certificate DER, PKCS#8 DER)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(dt.datetime(2010, 1, 1)).not_valid_after(dt.datetime(2049, 1, 1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.DER), pkcs8


@pytest.fixture
def local_tsa() -> Iterator[TSA]:
    """Start real RFC 3161 time-stamping services over HTTP on 127.0.0.1 (pyHanko's test TSA behind
    http.server), each stamping the current time or a fixed one: its URL and certificate (DER)."""
    import http.server
    import threading

    from asn1crypto import keys as asn1_keys
    from asn1crypto import tsp
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    servers: list[http.server.ThreadingHTTPServer] = []

    def start(fixed: dt.datetime | None) -> tuple[str, bytes]:
        der, pkcs8 = time_stamping_identity("test TSA")
        stamper = DummyTimeStamper(
            asn1_x509.Certificate.load(der), asn1_keys.PrivateKeyInfo.load(pkcs8), fixed_dt=fixed
        )

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
                body = stamper.request_tsa_response(request).dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/", der

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _stamped(setup: Setup, url: str, name: str, seed: int) -> bytes:
    issuer = Issuer(
        setup.station, PASSPHRASE, out_dir=setup.station.home.root / "tsa", forms=("electronic",), sample_seal=True,
        tsa_url=url,
    )  # fmt: skip
    with setup.station.register() as reg:
        issued = issuer.issue(
            reg, make_record(name=name, id_number=resident_id(seed), photo=setup.photo_dir / "p2.jpg")
        )
    data = issued.path.read_bytes()
    signer_info = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[0].signer_info
    assert "signature_time_stamp_token" in [a["type"].native for a in signer_info["unsigned_attrs"]]
    return data


def test_a_station_with_a_tsa_url_adds_a_signature_time_stamp(setup: Setup, local_tsa: TSA) -> None:
    url, tsa_certificate = local_tsa(None)
    data = _stamped(setup, url, "赵六", 6)
    status, reasons, facts = certkiosk(setup, data)
    assert (status, reasons) == ("valid", ())
    # certkiosk trusts no time-stamping authority: the time is the signer's claim, and says so
    assert not facts.timestamped  # type: ignore[attr-defined]
    assert setup.key.x509 is not None and not pyhanko_says_valid(data, setup.key.x509)  # pyHanko: TSA untrusted
    assert pyhanko_says_valid(data, setup.key.x509, tsa_certificate)  # trusting the TSA too: valid for both


def test_a_time_stamp_from_an_untrusted_authority_does_not_set_the_signing_time(setup: Setup, local_tsa: TSA) -> None:
    """Anyone can put a time-stamp token into a signature (it is an unsigned attribute): one whose
    authority nobody trusts must not move the signing time, e.g. outside the key's validity."""
    url, _ = local_tsa(dt.datetime(2019, 6, 1, tzinfo=dt.UTC))  # before the key's validity (2020-01-01)
    data = _stamped(setup, url, "钱七", 7)
    status, reasons, facts = certkiosk(setup, data)
    assert (status, reasons) == ("valid", ())
    assert not facts.timestamped and facts.signing_time.year != 2019  # type: ignore[attr-defined]
