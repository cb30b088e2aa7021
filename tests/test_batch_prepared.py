"""A batch row is checked once: the plan keeps its layout and its photo's check (not the photo), and
issuing reuses them only for the very file checked; a photo swapped after the plan is checked again."""

from __future__ import annotations

import datetime as dt
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import certgen.issuing.issuer
import certgen.pdf.render
from certgen.exceptions import PhotoError
from certgen.issuing.batch import plan_batch, run_batch
from certgen.issuing.issuer import Issuer
from certgen.issuing.roster import read_roster
from certgen.pdf.photo import embedded_photo, plain_jpeg, prepare_photo, prepared_again
from certgen.pdf.render import Laid
from certgen.station import Station
from certgen.station.home import StationHome
from tests.conftest import FILING, INSTITUTION, PASSPHRASE
from tests.test_batch import roster_rows, write_csv


def _photos(folder: Path, photo_dir: Path) -> Path:
    """Photos of the rows: 2-inch upright JPEGs (embedded as they are) and a 600-dpi one (resized)."""
    folder.mkdir()
    for i in range(3):
        shutil.copy(photo_dir / f"p{i}.jpg", folder / f"p{i}.jpg")
    with Image.open(photo_dir / "p3.jpg") as img:
        img.resize((827, 1158)).save(folder / "big.jpg", "JPEG", quality=92)
    return folder


def _roster(tmp_path: Path, photos: list[str]) -> Path:
    rows = roster_rows(len(photos))
    for row, photo in zip(rows[1:], photos, strict=True):
        row[10] = photo
    return write_csv(tmp_path / "r.csv", rows, "utf-8")


def _pdf(issuer: Issuer, plan_id: str, number: str) -> bytes:
    assert issuer.out_dir is not None
    return (issuer.out_dir / plan_id / f"{number}.pdf").read_bytes()


def test_a_batch_row_is_laid_out_and_its_photo_checked_once(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(_roster(tmp_path, ["p0.jpg", "big.jpg", "p1.jpg"]))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    assert not plan.problems
    for (blob,) in plan.scratch.db.execute("SELECT planned FROM rows"):
        planned = pickle.loads(blob)
        assert planned.printable is not None and planned.printable.photo is None  # its bytes are not kept
        assert planned.printable.photo_check is not None
        assert Path(planned.record.photo).read_bytes()[200:264] not in blob
    calls = {"photo": 0, "layout": 0}

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(certgen.issuing.issuer, "prepare_photo", counted("photo", certgen.issuing.issuer.prepare_photo))
    monkeypatch.setattr(certgen.issuing.issuer, "layout", counted("layout", certgen.issuing.issuer.layout))
    monkeypatch.setattr(certgen.pdf.render, "layout", counted("layout", certgen.pdf.render.layout))
    result = run_batch(issuer, plan)
    assert result.issued == 3 and calls == {"photo": 0, "layout": 0}


def test_a_batch_certificate_is_the_one_the_single_path_makes(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows issued by a batch (with the plan's layouts and photo checks) and one at a time
    (checked when issued) draw the same lines and embed the same photo bytes, apart from numbers."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(_roster(tmp_path, ["p0.jpg", "big.jpg", "p2.jpg"]))
    drawn: list[tuple[object, bytes | None, tuple[int, int] | None]] = []
    real_render = certgen.issuing.issuer.render

    def recording(record: Any, template: Any, font: Any, qr: str, photo: Any, *args: Any) -> bytes:
        laid: Laid = args[2]  # the lines drawn: both paths hand render() the lines their checks laid out
        n = str(record.number)
        text = [(size, [(ln.text.replace(n, "N"), ln.x_pt, ln.baseline_pt) for ln in lines]) for size, lines in laid]
        drawn.append((text, photo.jpeg if photo else None, (photo.width_px, photo.height_px) if photo else None))
        return bytes(real_render(record, template, font, qr, photo, *args))

    monkeypatch.setattr(certgen.issuing.issuer, "render", recording)
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    run_batch(issuer, plan)
    batch = list(drawn)
    with issuer.station.register() as reg:
        numbers = [c.number for c in reg.iter_batch(plan.batch_id) if c.status == "issued"]
        batch_photos = [embedded_photo(_pdf(issuer, plan.batch_id, n), 35, n) for n in numbers]

    other = Station(StationHome(tmp_path / "home2", "--home").ensure())
    other.new_key(FILING, INSTITUTION, PASSPHRASE, valid_from=dt.date(2020, 1, 1))
    single = Issuer(other, PASSPHRASE, out_dir=tmp_path / "out2")
    drawn.clear()
    single_photos = []
    with other.register() as reg:
        for planned in plan.rows:
            issued = single.issue(reg, planned.record)
            single_photos.append(embedded_photo(issued.path.read_bytes(), 35, str(issued.path)))
    assert drawn == batch and len(batch) == 3
    assert [p.jpeg for p in single_photos if p] == [p.jpeg for p in batch_photos if p]
    assert len([p for p in batch_photos if p]) == 3
    assert batch[1][2] == (413, 578)  # the 600-dpi photo was resized to 300 dpi in both


@pytest.mark.parametrize("workers", [1, 2])
def test_a_photo_swapped_after_the_plan_is_checked_again_before_it_is_embedded(
    issuer: Issuer, tmp_path: Path, photo_dir: Path, workers: int
) -> None:
    """An attacker (or a clumsy operator) replaces a checked photo between the plan and issuing:
    one that fails the checks is refused with the check's own message before a number is
    allocated; one that passes them is embedded (the file's bytes read once, checked and embedded)."""
    photos = _photos(tmp_path / "photos", photo_dir)
    roster = read_roster(_roster(tmp_path, ["p0.jpg", "p1.jpg", "p2.jpg"]))
    with issuer.station.register() as reg:
        plan = plan_batch(issuer, reg, roster, photos)
    assert not plan.problems
    Image.new("RGB", (413, 579), (60, 120, 220)).save(photos / "p1.jpg", "JPEG")  # blue background
    with pytest.raises(PhotoError, match="背景不是白色"):
        run_batch(issuer, plan, workers=workers)
    rows = list(plan.rows)
    with issuer.station.register() as reg:
        certs = list(reg.iter_batch(plan.batch_id))
        assert rows[1].key not in {c.row_key for c in certs}  # refused before a number was allocated for it
        issued = [c.row_key for c in certs if c.status == "issued"]
        assert rows[0].key in issued  # (a second worker may have been issuing row 3 meanwhile)
        assert workers > 1 or reg.counts() == {"issued": 1, "pending": 0, "void": 0}

    shutil.copy(photo_dir / "p4.jpg", photos / "p1.jpg")  # a valid photo, not the one checked
    result = run_batch(issuer, plan, workers=workers)
    assert result.issued == 3 - len(issued)
    with issuer.station.register() as reg:
        cert = next(c for c in reg.iter_batch(plan.batch_id) if c.row_key == rows[1].key and c.status == "issued")
        embedded = embedded_photo(_pdf(issuer, plan.batch_id, cert.number), 35, cert.number)
    assert embedded is not None and embedded.jpeg == plain_jpeg((photos / "p1.jpg").read_bytes())
    assert embedded.jpeg != plain_jpeg((photo_dir / "p1.jpg").read_bytes())


def test_a_photo_prepared_again_is_the_photo_prepared(tmp_path: Path, photo_dir: Path) -> None:
    photos = _photos(tmp_path / "photos", photo_dir)
    for name in ("p0.jpg", "big.jpg"):
        first = prepare_photo(photos / name, 35, 49)
        assert first.check is not None
        again = prepared_again(photos / name, first.check, 35, 49)
        assert (again.jpeg, again.width_px, again.height_px, again.dpi, again.warnings) == (
            first.jpeg, first.width_px, first.height_px, first.dpi, first.warnings,
        )  # fmt: skip
    check = prepare_photo(photos / "p0.jpg", 35, 49).check
    assert check is not None
    (photos / "p0.jpg").write_bytes((photos / "p0.jpg").read_bytes()[:2000])  # truncated after the check
    with pytest.raises(PhotoError, match="已损坏或不完整"):
        prepared_again(photos / "p0.jpg", check, 35, 49)
    (photos / "p0.jpg").unlink()
    with pytest.raises(PhotoError, match="无法读取照片"):
        prepared_again(photos / "p0.jpg", check, 35, 49)


def test_kept_checks_serve_only_the_record_key_and_blank_they_were_made_for(issuer: Issuer, photo_dir: Path) -> None:
    """Handed another record's (or another blank's) kept checks, issuing prepares in full."""
    from tests.conftest import make_record

    first = make_record(name="张三", photo=photo_dir / "p0.jpg")
    other = make_record(name="欧阳娜娜", photo=photo_dir / "p1.jpg")
    with issuer.station.register() as reg:
        key = issuer.key_for(reg, first)
    first, other = issuer.complete_record(first, key), issuer.complete_record(other, key)
    kept = issuer.prepare(first, key).kept()
    reused = issuer.prepared(first, key, None, kept)
    assert reused.laid is kept.laid and reused.photo == prepare_photo(photo_dir / "p0.jpg", 35, 49)
    fresh = issuer.prepare(other, key)
    mismatched = issuer.prepared(other, key, None, kept)
    assert mismatched.laid == fresh.laid != kept.laid
    assert mismatched.photo == fresh.photo and mismatched.photo != reused.photo
    blank = issuer.prepared(first, key, "LN0001", kept)  # a template may print the blank's serial
    assert blank.made_for == issuer.prepare(first, key, "LN0001").made_for != kept.made_for
    assert blank.photo is not None and blank.photo_check is None  # prepared in full, not from the kept check
