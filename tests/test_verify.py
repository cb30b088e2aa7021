"""verify: every reason code from a real input, scans, PDFs, archives, the wedge scanner, the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import base45
import cbor2
import numpy as np
import pikepdf
import pypdfium2
import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image

from certgen.cells import shown
from certgen.exceptions import RecordError
from certgen.issuing.issuer import Issued, Issuer
from certgen.payload import Claim, claims_map, protected_header, sig_structure, to_text
from certgen.station import Station
from certgen.trust import PublicKeyInfo, Revocation, TrustBundle
from kiosk.cli import cli
from tests.conftest import PASSPHRASE, make_record
from tests.vectors.payload import make_vectors as mv
from verify.archive import run_archive
from verify.check import verify_text
from verify.files import verify_bytes
from verify.reasons import Reason
from verify.report import to_json, write_report

TODAY = dt.date(2026, 11, 21)


def qr_image(text: str, scale: int = 6, border: int = 40) -> Image.Image:
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    img = Image.fromarray(np.asarray(symbol.to_image(scale=scale, add_quiet_zones=False)))
    page = Image.new("L", (img.width + 2 * border, img.height + 2 * border), 255)
    page.paste(img, (border, border))
    return page


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def signed_text(claims: dict[int, Any], key: Any = None) -> str:
    """Sign arbitrary claims (even ones the record would refuse) with a test key."""
    key = key or mv.test_key()
    payload = cbor2.dumps(claims, canonical=True)
    protected = protected_header(mv.kid(key))
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, key.sign(sig_structure(protected, payload))]))
    return to_text(cose)


def base_claims(**changes: Any) -> dict[int, Any]:
    record = make_record(number="Y000021012001203000001")
    claims = claims_map(record, "liaoning-2020")
    for name, value in changes.items():
        claims[int(Claim[name.upper()])] = value
    return claims


def trust(**valid: Any) -> TrustBundle:
    keys = []
    for key, filing, name in (
        (mv.test_key(), mv.TEST_FILING, mv.TEST_INSTITUTION),
        (mv.other_key(), mv.OTHER_FILING, mv.OTHER_INSTITUTION),
    ):
        keys.append(PublicKeyInfo(
            mv.kid(key), key.public_key().public_bytes_raw(), filing, name,
            valid.get("valid_from", dt.date(2020, 1, 1)), valid.get("valid_until"),
        ))  # fmt: skip
    return TrustBundle(tuple(keys))


def _case(reason: Reason) -> tuple[str, TrustBundle]:
    good = signed_text(base_claims())
    t = trust()
    if reason is Reason.NOT_OUR_FORMAT:
        return "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH", t
    if reason is Reason.MALFORMED:
        return "ZJ1:###", t
    if reason is Reason.UNKNOWN_KEY:
        return good, TrustBundle((trust().keys[1],))
    if reason is Reason.BAD_SIGNATURE:
        forged = signed_text(base_claims(name="李四"), mv.other_key())  # re-signed by someone else ...
        env = cbor2.loads(base45.b45decode(forged[4:]))
        real = cbor2.loads(base45.b45decode(good[4:]))
        _, _, payload, signature = env.value
        return to_text(cbor2.dumps(cbor2.CBORTag(18, [real.value[0], {}, payload, signature]))), t  # ... under our kid
    if reason is Reason.KEY_REVOKED:
        rev = Revocation("key", mv.kid(mv.test_key()).hex(), "私钥泄露", "2026-01-01T00:00:00Z")
        return good, t.with_revocations([rev])
    if reason is Reason.KEY_NOT_VALID_AT_ISSUE:
        return good, trust(valid_from=dt.date(2021, 1, 1))
    if reason is Reason.REVOKED:
        rev = Revocation("batch", "B1", "考场违纪", "2026-01-01T00:00:00Z", ("Y000021012001203000001",))
        return good, t.with_revocations([rev])
    if reason is Reason.NUMBER_FORMAT:
        return signed_text(base_claims(number="Y000099012001203000001")), t
    if reason is Reason.NUMBER_KEY_MISMATCH:
        return signed_text(base_claims(), mv.other_key()), t
    if reason is Reason.NUMBER_LEVEL_MISMATCH:
        return signed_text(base_claims(level=4)), t
    if reason is Reason.NUMBER_YEAR_MISMATCH:
        return signed_text(base_claims(issue_date=(dt.date(2021, 3, 1) - dt.date(1970, 1, 1)).days)), t
    if reason is Reason.BAD_FIELD:
        return signed_text(base_claims(id_number="110105194912310021")), t
    raise AssertionError(reason)


TEXT_REASONS = [
    Reason.NOT_OUR_FORMAT, Reason.MALFORMED, Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE, Reason.KEY_REVOKED,
    Reason.KEY_NOT_VALID_AT_ISSUE, Reason.REVOKED, Reason.NUMBER_FORMAT, Reason.NUMBER_KEY_MISMATCH,
    Reason.NUMBER_LEVEL_MISMATCH, Reason.NUMBER_YEAR_MISMATCH, Reason.BAD_FIELD,
]  # fmt: skip


def test_a_good_payload_is_valid() -> None:
    result = verify_text(signed_text(base_claims()), trust(), today=TODAY)
    assert result.status == "valid" and result.findings == ()
    assert (result.decoded, result.trusted, result.intact, result.revoked) == (True, True, True, False)


@pytest.mark.parametrize("reason", TEXT_REASONS, ids=lambda r: r.value)
def test_each_reason_from_a_scanned_image(reason: Reason) -> None:
    text, bundle = _case(reason)
    results = verify_bytes(png(qr_image(text)), f"{reason.value}.png", bundle, today=TODAY)
    assert len(results) == 1
    result = results[0]
    assert reason in result.reasons, result.findings
    assert result.status == "invalid"
    summary = result.summary()
    assert {"source", "page", "status", "reasons", "number", "claims", "institution", "kid"} <= set(summary)
    assert json.loads(json.dumps(summary, ensure_ascii=False))["status"] == "invalid"


def test_a_forged_signature_does_not_show_the_forged_name() -> None:
    text, bundle = _case(Reason.BAD_SIGNATURE)
    result = verify_text(text, bundle, today=TODAY)
    assert result.reasons == (Reason.BAD_SIGNATURE,)
    assert "李四" not in result.line()


def test_unreadable_inputs(tmp_path: Path) -> None:
    blank = verify_bytes(png(Image.new("L", (600, 400), 255)), "blank.png", trust())
    assert blank[0].reasons == (Reason.NO_QR,) and blank[0].status == "unreadable"
    text = verify_bytes(b"just some notes", "notes.txt", trust())
    assert text[0].reasons == (Reason.UNREADABLE_FILE,) and text[0].status == "unreadable"
    truncated = verify_bytes(png(qr_image("ZJ1:ABC"))[:300], "cut.png", trust())
    assert truncated[0].reasons == (Reason.UNREADABLE_FILE,)
    bomb = io.BytesIO()
    Image.new("1", (20_000, 12_000), 1).save(bomb, "PNG")
    before = Image.MAX_IMAGE_PIXELS  # checked from the header; the process-wide setting is left alone
    assert "解压炸弹" in verify_bytes(bomb.getvalue(), "bomb.png", trust())[0].findings[0].detail
    assert before == Image.MAX_IMAGE_PIXELS


def test_several_certificates_on_one_page() -> None:
    texts = [signed_text(base_claims(number=f"Y000021012001203{i:06d}")) for i in (1, 2, 3)]
    page = Image.new("L", (1800, 700), 255)
    for i, text in enumerate(texts):
        page.paste(qr_image(text, scale=5), (40 + i * 590, 100))
    results = verify_bytes(png(page), "page.png", trust(), today=TODAY)
    assert [r.claims.number for r in results if r.claims] == [f"Y000021012001203{i:06d}" for i in (1, 2, 3)]
    assert all(r.valid for r in results)


def test_multi_page_tiff() -> None:
    frames = [qr_image(signed_text(base_claims(number=f"Y000021012001203{i:06d}"))).convert("RGB") for i in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    results = verify_bytes(out.getvalue(), "two.tif", trust(), today=TODAY)
    assert [(r.page, r.valid) for r in results] == [(1, True), (2, True)]


def test_small_low_contrast_photo_decodes_through_the_ladder() -> None:
    img = qr_image(signed_text(base_claims()), scale=2, border=10)
    faded = Image.eval(img, lambda v: 90 + v * 110 // 255)  # grey on light grey
    result = verify_bytes(png(faded), "phone.png", trust(), today=TODAY)[0]
    assert result.valid, result.findings


def test_pyzbar_backend_gives_the_same_verdict() -> None:
    pytest.importorskip("pyzbar.pyzbar", reason="pyzbar needs Debian's libzbar0 (installed by .ci/run)")
    text, bundle = _case(Reason.REVOKED)
    for decoder in ("zxing", "pyzbar"):
        result = verify_bytes(png(qr_image(text)), "x.png", bundle, decoder=decoder, today=TODAY)[0]  # type: ignore[arg-type]
        assert result.reasons == (Reason.REVOKED,)


# --- our own PDFs ------------------------------------------------------------------------------
@pytest.fixture
def issued(issuer: Issuer, photo_dir: Path) -> Issued:
    with issuer.station.register() as reg:
        return issuer.issue(reg, make_record(photo=photo_dir / "p1.jpg"))


def test_an_issued_pdf_and_its_scan_are_valid(issuer: Issuer, issued: Issued) -> None:
    bundle = issuer.station.trust.load()
    assert [r.valid for r in verify_bytes(issued.path.read_bytes(), "cert.pdf", bundle)] == [True]
    page = pypdfium2.PdfDocument(str(issued.path))[0].render(scale=200 / 72).to_pil()
    out = io.BytesIO()
    page.save(out, "JPEG", quality=60)
    assert verify_bytes(out.getvalue(), "scan.jpg", bundle)[0].valid


def test_a_tampered_pdf_is_a_pdf_mismatch(issuer: Issuer, issued: Issued, tmp_path: Path) -> None:
    with pikepdf.open(issued.path) as pdf:
        spec = pdf.attachments["certificate.json"]
        data = json.loads(spec.get_file().read_bytes())
        data["record"]["name"] = "李四"
        pdf.attachments["certificate.json"] = pikepdf.AttachedFileSpec(
            pdf, json.dumps(data, ensure_ascii=False).encode(), filename="certificate.json"
        )
        pdf.save(tmp_path / "tampered.pdf")
    result = verify_bytes((tmp_path / "tampered.pdf").read_bytes(), "t.pdf", issuer.station.trust.load())[0]
    assert result.reasons == (Reason.PDF_MISMATCH,) and "李四" in result.findings[0].detail


def test_a_revoked_batch_and_revoked_certificate(issuer: Issuer, photo_dir: Path) -> None:
    station: Station = issuer.station
    with station.register() as reg:
        a = issuer.issue(reg, make_record(), batch_id="B-REVOKED", row_key="a")
        b = issuer.issue(reg, make_record(level=4), batch_id="B-REVOKED", row_key="b")
        c = issuer.issue(reg, make_record(level=5))
    station.revoke("batch", "B-REVOKED", "考场违纪，整批撤销")
    station.revoke("certificate", str(c.record.number), "信息有误")
    bundle = station.trust.load()
    for item in (a, b, c):
        result = verify_text(item.qr_text, bundle)
        assert result.reasons == (Reason.REVOKED,)
    assert "整批撤销" in verify_text(a.qr_text, bundle).findings[0].detail


# --- archives ----------------------------------------------------------------------------------
def _archive(folder: Path) -> Path:
    folder.mkdir()
    good = signed_text(base_claims())
    (folder / "a.png").write_bytes(png(qr_image(good)))
    (folder / "copy-of-a.png").write_bytes(png(qr_image(good)))
    same_number = signed_text(base_claims(name="王五"))  # another payload, same number
    (folder / "b.png").write_bytes(png(qr_image(same_number)))
    (folder / "notes.txt").write_text("not a certificate")
    with zipfile.ZipFile(folder / "more.zip", "w") as z:
        for i in range(2, 8):
            z.writestr(f"scans/{i}.png", png(qr_image(signed_text(base_claims(number=f"Y000021012001203{i:06d}")))))
        z.writestr("scans/broken.png", b"\x89PNG broken")
    return folder


def test_archive_checks_duplicates_copies_and_reports(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "archive")
    run = run_archive([folder], trust(), state_path=tmp_path / "state.sqlite", workers=2, today=TODAY)
    assert run.files == 10 and [(s.source, s.reason) for s in run.skipped] == [
        (str(folder / "notes.txt"), "既非图片也非PDF")
    ]
    by_source = {Path(r.source).name: r for r in run.results}
    assert Reason.DUPLICATE_NUMBER in by_source["a.png"].reasons
    assert Reason.DUPLICATE_NUMBER in by_source["b.png"].reasons
    assert any("副本" in n for n in by_source["copy-of-a.png"].notes)
    assert run.totals() == {"valid": 6, "invalid": 3, "unreadable": 1}
    assert run.by_reason() == {"DUPLICATE_NUMBER": 3, "UNREADABLE_FILE": 1}
    for suffix in (".csv", ".json", ".html"):
        write_report(run, tmp_path / f"report{suffix}")
    doc = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert doc["totals"] == run.totals() and len(doc["not_valid"]) == 4
    assert "DUPLICATE_NUMBER" in (tmp_path / "report.csv").read_text("utf-8-sig")
    assert "证书核验报告" in (tmp_path / "report.html").read_text("utf-8")


def test_reports_are_streamed_from_the_state_file_with_the_content_of_one_whole_document(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "archive")
    (tmp_path / "empty").mkdir()
    for inputs in ([folder], [tmp_path / "empty"]):
        run = run_archive(inputs, trust(), state_path=tmp_path / "state.sqlite", workers=1, today=TODAY)
        results, skipped = list(run.results), list(run.skipped)
        assert len(results) == len(run.results) and len(skipped) == len(run.skipped)
        whole = {
            "files": run.files,
            "skipped": [{"source": shown(s.source), "reason": shown(s.reason)} for s in skipped],
            "reused": run.reused,
            "certificates": len(results),
            "totals": run.totals(),
            "by_reason": run.by_reason(),
            "not_valid": [r.summary() for r in results if not r.valid],
            "copies": [r.summary() for r in results if r.notes],
            "valid_with_old_revocation_data": [r.summary() for r in results if r.valid and r.trust_stale],
        }
        assert to_json(run) == (json.dumps(whole, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
        assert sum(run.totals().values()) == len(results)


def test_an_interrupted_archive_run_resumes(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "archive")
    state = tmp_path / "state.sqlite"

    def stop_after_four(done: int, total: int) -> None:
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_archive([folder], trust(), state_path=state, workers=1, today=TODAY, progress=stop_after_four)
    seen: list[int] = []
    run = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY, progress=lambda d, t: seen.append(d))
    assert run.reused == 4  # the decoding of every file finished before the interruption is kept
    assert run.previous_interrupted and "曾被中断" in "\n".join(run.summary_lines())
    assert seen[-1] == 10
    assert run.totals() == {"valid": 6, "invalid": 3, "unreadable": 1}
    again = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY, force=True)
    assert again.reused == 0 and not again.previous_interrupted
    third = run_archive([folder], trust(), state_path=state, workers=1, today=TODAY)
    assert third.reused == 10 and not third.previous_interrupted  # nothing claims an interruption now
    assert not any("中断" in line for line in third.summary_lines())


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = run_archive([tmp_path / "empty", tmp_path / "missing.png"], trust(), state_path=tmp_path / "s.sqlite")
    assert [r.reasons for r in run.results] == [(Reason.NO_QR,), (Reason.UNREADABLE_FILE,)]
    assert "文件夹为空" in run.results[0].findings[0].detail


# --- the command -------------------------------------------------------------------------------
def _issued_for_cli(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> tuple[Issued, list[str], CliRunner]:
    """A certificate issued on the station, the ``--home`` arguments of the station, a runner."""
    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        issued = issuer.issue(reg, make_record())
    return issued, ["--home", str(station.home.root)], CliRunner()


def test_cli_verify_exit_codes_json_and_wedge_input(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    issued, home, runner = _issued_for_cli(keyed_station, tmp_path)
    ok = runner.invoke(cli, [*home, "verify", "--text", issued.qr_text])
    assert ok.exit_code == 0 and "✓ 有效" in ok.stdout and "张三" in ok.stdout and "三级/高级工" in ok.stdout
    typed = issued.qr_text.lower() + "\r\n" + "HC1:XYZ\n"  # Caps Lock inverted, then a foreign code
    result = runner.invoke(cli, [*home, "verify", "--json"], input=typed)
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert result.exit_code == 1 and [x["status"] for x in lines] == ["valid", "invalid"]
    assert lines[1]["reasons"] == ["NOT_OUR_FORMAT"]
    pdf_run = runner.invoke(cli, [*home, "verify", str(issued.path), "--report", str(tmp_path / "r.html")])
    assert pdf_run.exit_code == 0 and (tmp_path / "r.html").exists()
    no_trust = runner.invoke(cli, ["--home", str(tmp_path / "new"), "verify", "--text", "ZJ1:X"])
    assert no_trust.exit_code == 2 and "没有信任库" in no_trust.stderr
    bad_report = runner.invoke(cli, [*home, "verify", str(issued.path), "--report", str(tmp_path / "r.txt")])
    assert bad_report.exit_code == 2


def test_cli_verify_report_never_leaves_a_verdict_out(
    keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path
) -> None:
    """``--report`` lists the files' verdicts: with ``--text`` or standard input it is refused
    before anything is verified, not written without their verdicts (a report of "0 invalid" while
    an invalid code was checked in the same run); the printed summary counts the ``--text`` codes."""
    issued, home, runner = _issued_for_cli(keyed_station, tmp_path)
    report = tmp_path / "r.csv"
    for args, typed in (
        (["--text", "ZJ1:BAD", str(issued.path)], None),
        (["--text", "ZJ1:BAD"], None),
        ([], "ZJ1:BAD\n"),
    ):
        refused = runner.invoke(cli, [*home, "verify", *args, "--report", str(report)], input=typed)
        assert refused.exit_code == 2 and "--report" in refused.stderr and str(report) in refused.stderr, args
        assert not report.exists() and "无效" not in refused.stdout, args
    both = runner.invoke(cli, [*home, "verify", "--text", "ZJ1:BAD", str(issued.path)])
    assert both.exit_code == 1
    assert "有效 1，无效 0" in both.stdout and "另有 --text 二维码文本 1 条：有效 0，无效 1" in both.stdout


@pytest.mark.parametrize(
    ("reason", "changes"),
    [
        (Reason.NUMBER_LEVEL_MISMATCH, {"level": 4}),
        (Reason.NUMBER_YEAR_MISMATCH, {"issue_date": dt.date(2021, 3, 1)}),
    ],
    ids=lambda v: getattr(v, "value", ""),
)
def test_verify_and_record_validation_word_a_number_mismatch_alike(reason: Reason, changes: dict[str, object]) -> None:
    # one rule (certgen.number.cross_check) serves both sides: the issuer is refused with the same words
    text, bundle = _case(reason)
    found = [f.detail for f in verify_text(text, bundle, today=TODAY).findings if f.reason is reason]
    with pytest.raises(RecordError) as refused:
        make_record(number="Y000021012001203000001", **changes)
    assert len(found) == 1
    assert found[0].endswith(refused.value.errors[0].message)
