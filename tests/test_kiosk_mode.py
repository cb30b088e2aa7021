"""The verification kiosk (certkiosk kiosk): camera, scan-to-folder, SANE, wedge, PIN, log, lockdown.

The camera is fed video files this test makes with OpenCV's VideoWriter: a rendered certificate
sliding into view. Time is driven by the timers' callbacks or tiny timeouts, never by sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import base45
import cbor2
import cv2
import numpy as np
import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from textual.pilot import Pilot
from textual.widgets import Input, Static

from certgen.issuing.issuer import Issued, Issuer
from certgen.payload import Claim, to_text
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.trust import InstitutionTrust, PublicKeyInfo
from kiosk.app import StationApp
from kiosk.checklog import KioskLog, log_path
from kiosk.cli import cli
from kiosk.kiosk_app import KioskApp, KioskOptions, build_kiosk_app
from kiosk.pin import check_pin, lockout_seconds, pin_path, set_pin
from kiosk.screens.kiosk import KioskScreen
from kiosk.settings import settings_path
from kiosk.widgets.pin_dialog import PinDialog
from tests.conftest import PASSPHRASE, make_record
from tests.helpers.video import first_readable_frame, page_scan, qr_page, slide_video
from verify.camera import CameraLoop, CameraStatus, CodeSeen, Dedupe, FrameDecoder
from verify.files import verify_bytes
from verify.watch import FolderWatch

PIN = "246810"
ID_NUMBER = "11010519491231002X"
MASKED = "1101**********002X"
FPS = 10


# --- fixtures: an issued certificate, its scan, videos of it ----------------------------------
@pytest.fixture
def issued(keyed_station: tuple[Station, PublicKeyInfo], tmp_path: Path) -> tuple[Station, Issued]:
    station, _ = keyed_station
    issuer = Issuer(station, PASSPHRASE, out_dir=tmp_path / "out")
    with station.register() as reg:
        cert = issuer.issue(reg, make_record(id_number=ID_NUMBER), batch_id="B1", row_key="r1")
    set_pin(station.home, PIN)
    return station, cert


def forged_text(cert: Issued) -> str:
    """The certificate's QR text with the holder's name changed, the signature kept."""
    envelope = cbor2.loads(base45.b45decode(cert.qr_text[4:]))
    protected, unprotected, payload, signature = envelope.value
    claims = cbor2.loads(payload)
    claims[int(Claim.NAME)] = "李四"
    forged = cbor2.dumps(claims, canonical=True)
    return to_text(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, forged, signature])))


def two_codes(cert: Issued) -> np.ndarray:
    """A page with the genuine code (top left, read first) and a forged one beside it."""
    genuine, forged = qr_page(cert.qr_text), qr_page(forged_text(cert))
    page = np.full((max(genuine.shape[0], forged.shape[0]), genuine.shape[1] + forged.shape[1]), 255, np.uint8)
    page[: genuine.shape[0], : genuine.shape[1]] = genuine
    page[: forged.shape[0], genuine.shape[1] :] = forged
    return page


# --- driving the kiosk ---------------------------------------------------------------------
def drive(station: Station, script: Callable[[KioskApp, Pilot[None]], Awaitable[None]], **options: object) -> KioskApp:
    app = build_kiosk_app(station.home, KioskOptions(**options))  # type: ignore[arg-type]

    async def run() -> None:
        async with app.run_test(size=(120, 45)) as pilot:
            await pilot.pause()
            await script(app, pilot)

    asyncio.run(run())
    return app


def text_of(app: KioskApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def screen_text(app: KioskApp) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


def stack(app: KioskApp) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack]


async def finish_workers(app: KioskApp, pilot: Pilot[None]) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


# --- camera --------------------------------------------------------------------------------
def test_camera_video_gives_one_valid_verdict(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, cert = issued
    video = slide_video(tmp_path / "counter.avi", page_scan(cert.path), fps=FPS)
    seen: dict[str, str] = {}

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        await finish_workers(app, pilot)
        seen["headline"] = text_of(app, "#headline")
        seen["fields"] = text_of(app, "#fields")
        seen["camera"] = text_of(app, "#camera-status")
        seen["screen"] = screen_text(app)

    drive(station, script, camera=str(video))
    entries = KioskLog(station.home).entries()
    assert [(e["verdict"], e["number"], e["channel"]) for e in entries] == [
        ("valid", str(cert.record.number), "camera")
    ]
    assert seen["headline"] == "✓ 证书有效"
    assert "张三" in seen["fields"] and MASKED in seen["fields"] and "华晨汽车集团控股有限公司" in seen["fields"]
    assert "吊销数据：本站机构，最新" in seen["fields"]
    assert ID_NUMBER not in seen["screen"]
    assert "视频已播放完毕" in seen["camera"]


def test_camera_loop_reads_the_code_within_half_a_second_and_once(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    _, cert = issued
    video = slide_video(tmp_path / "counter.avi", page_scan(cert.path), fps=FPS)
    codes: list[CodeSeen] = []
    statuses: list[CameraStatus] = []
    CameraLoop(str(video)).run(codes.extend, statuses.append, threading.Event())
    first = first_readable_frame(video)
    assert [c.text for c in codes] == [cert.qr_text]  # the blank frame in the still part does not count twice
    assert codes[0].frame - first <= FPS // 2  # within half a second of video time
    assert any(s.connected and s.code_in_view and s.fps > 0 for s in statuses)
    assert any(s.connected and not s.code_in_view for s in statuses)
    lines = [s.line() for s in statuses]
    assert any("帧/秒" in line and "画面中有二维码" in line for line in lines)  # the status line on screen


def test_camera_forged_code_gives_the_reason(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, cert = issued
    video = slide_video(tmp_path / "forged.avi", qr_page(forged_text(cert)), seconds=2.0, fps=FPS)
    seen: dict[str, str] = {}

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        await finish_workers(app, pilot)
        seen["headline"], seen["screen"] = text_of(app, "#headline"), screen_text(app)

    drive(station, script, camera=str(video))
    assert seen["headline"] == "✗ 签名无效：内容被篡改或伪造"
    assert "BAD_SIGNATURE" in seen["screen"] and "李四" not in seen["screen"]
    assert [(e["verdict"], e["reasons"]) for e in KioskLog(station.home).entries()] == [("invalid", ["BAD_SIGNATURE"])]


def test_a_camera_that_fails_is_reported_and_retried(tmp_path: Path, issued: tuple[Station, Issued]) -> None:
    _, cert = issued
    video = slide_video(tmp_path / "short.avi", page_scan(cert.path), seconds=1.0, fps=FPS)
    opened: list[int] = []

    def flaky(source: int | str) -> cv2.VideoCapture:
        """A network camera that is down once, then streams (a real capture) and drops."""
        opened.append(len(opened))
        if len(opened) == 1:
            raise OSError("connection refused")
        return cv2.VideoCapture(str(video))

    statuses: list[CameraStatus] = []
    stop = threading.Event()

    def status(state: CameraStatus) -> None:
        statuses.append(state)
        if sum("已断开" in s.message for s in statuses) == 2:
            stop.set()

    CameraLoop("rtsp://camera.invalid/stream", opener=flaky, retry_seconds=0.0).run(lambda codes: None, status, stop)
    lines = [s.line() for s in statuses if not s.connected]
    assert "connection refused" in lines[0] and "重试" in lines[0]
    assert sum("摄像头已断开" in line for line in lines) == 2 and len(opened) == 3
    assert any(s.connected for s in statuses)


def test_a_missing_camera_is_said_on_screen(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, _ = issued
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        for _ in range(20):
            await pilot.pause(0.02)
            if "找不到" in text_of(app, "#camera-status"):
                break
        seen.append(text_of(app, "#camera-status"))
        assert stack(app) == ["KioskScreen"]

    drive(station, script, camera=str(tmp_path / "no-such-camera.avi"))
    assert "找不到摄像头或视频文件" in seen[0] and "重试" in seen[0]


def test_dedupe_counts_a_code_again_only_after_it_left_the_view() -> None:
    d = Dedupe(forget_after=1.0)
    assert d.new_codes(["A"], 0.0) == ["A"]
    assert d.new_codes(["A"], 0.1) == [] and d.new_codes([], 0.5) == [] and d.new_codes(["A"], 1.0) == []
    assert d.new_codes(["A", "B"], 1.3) == ["B"]
    assert d.new_codes(["A"], 2.5) == ["A"]  # gone from 1.3 to 2.5: a new person


def test_frame_decoder_reads_a_small_code_from_the_full_frame(issued: tuple[Station, Issued]) -> None:
    _, cert = issued
    code = np.asarray(
        zxingcpp.create_barcode(cert.qr_text, zxingcpp.BarcodeFormat.QRCode, ec_level="M").to_image(scale=2)
    )
    frame = np.full((1080, 1920), 255, np.uint8)
    frame[101 : 101 + code.shape[0], 1501 : 1501 + code.shape[1]] = code  # modules straddle pixel pairs
    assert FrameDecoder(full_frame=False)(frame) == []  # 2 px modules vanish at half scale
    assert FrameDecoder()(frame) == [cert.qr_text]


# --- scan-to-folder ------------------------------------------------------------------------
def test_a_file_written_in_two_parts_is_verified_once_after_it_is_complete(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    station, cert = issued
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    scan = tmp_path / "scan.png"
    Image.fromarray(page_scan(cert.path, dpi=200)).save(scan)
    data = scan.read_bytes()
    target = inbox / "scan-0001.png"
    headlines: list[str] = []

    async def poll(app: KioskApp, pilot: Pilot[None]) -> None:
        app.screen.poll_folder()  # type: ignore[attr-defined]
        await finish_workers(app, pilot)
        headlines.append(text_of(app, "#headline"))

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        with target.open("wb") as fh:
            fh.write(data[: len(data) // 2])
        for _ in range(3):  # seen, stable but unreadable (the scanner paused), still waiting
            await poll(app, pilot)
        assert target.exists() and KioskLog(station.home).entries() == []
        with target.open("ab") as fh:
            fh.write(data[len(data) // 2 :])
        await poll(app, pilot)  # grew: not yet
        assert KioskLog(station.home).entries() == []
        await poll(app, pilot)  # stable and readable: verified and filed
        await poll(app, pilot)  # nothing left

    drive(station, script, watch=inbox, poll_seconds=3600)
    assert [e["verdict"] for e in KioskLog(station.home).entries()] == ["valid"]
    assert headlines[-2] == "✓ 证书有效"
    assert not target.exists() and (inbox / "done" / "scan-0001.png").read_bytes() == data


def test_watch_files_bad_scans_as_failed_and_never_reads_temporary_files(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    station, _ = issued
    bundle = station.trust.load()
    watch = FolderWatch(tmp_path, lambda data, name: verify_bytes(data, name, bundle), patience=1)
    (tmp_path / "blank.png").write_bytes(b"")
    Image.new("L", (200, 200), 255).save(tmp_path / "white.png")
    (tmp_path / ".part.png").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("x")
    done = [c for _ in range(4) for c in watch.poll()]
    assert [(c.name, c.valid) for c in done] == [("white.png", False)]
    assert (tmp_path / "failed" / "white.png").exists()
    assert (tmp_path / "blank.png").exists() and (tmp_path / ".part.png").exists()


# --- SANE scanner key ------------------------------------------------------------------------
def test_the_scan_key_runs_scanimage_at_300_dpi(issued: tuple[Station, Issued], tmp_path: Path) -> None:
    station, cert = issued
    scan = tmp_path / "page.png"
    Image.fromarray(page_scan(cert.path, dpi=150)).save(scan)
    args = tmp_path / "args.txt"
    fake = tmp_path / "scanimage"  # stands in for the device: prints a PNG page like scanimage does
    fake.write_text(f'#!/bin/sh\necho "$@" > {args}\ncat {scan}\n')
    fake.chmod(0o755)
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        shown = [(b.binding.description, b.enabled) for b in app.active_bindings.values() if b.binding.key == "f8"]
        assert shown == [("扫描", True)]
        await pilot.press("f8")
        await finish_workers(app, pilot)
        seen.append(text_of(app, "#headline"))

    drive(station, script, scanimage=str(fake))
    assert seen == ["✓ 证书有效"]
    assert "--resolution 300" in args.read_text()
    assert [e["channel"] for e in KioskLog(station.home).entries()] == ["scanner"]


def test_without_sane_the_scan_key_is_hidden(issued: tuple[Station, Issued]) -> None:
    station, _ = issued
    keys: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        keys.extend(b.binding.key for b in app.active_bindings.values() if b.enabled)
        await pilot.press("f8")
        await pilot.pause()
        keys.append(text_of(app, "#headline"))

    drive(station, script, scanimage=None)
    assert "f8" not in keys[:-1] and keys[-1] == "请出示证书二维码"


# --- wedge scanner, masking, log, clearing -------------------------------------------------
def test_wedge_scan_masks_the_id_number_on_screen_and_in_the_log(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        assert app.focused is not None and app.focused.id == "scan"
        await pilot.press(*cert.qr_text, "enter")
        await pilot.pause()
        seen.append(screen_text(app))
        assert app.screen.query_one("#scan", Input).value == ""

    drive(station, script)
    assert "✓ 证书有效" in seen[0] and MASKED in seen[0] and ID_NUMBER not in seen[0]
    log = log_path(station.home).read_text("utf-8")
    assert ID_NUMBER not in log and "张三" not in log and str(cert.record.number) in log
    assert [set(e) for e in KioskLog(station.home).entries()] == [{"time", "channel", "number", "verdict", "reasons"}]


def test_the_wedge_input_never_opens_files(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#scan", Input).value = str(cert.path)
        await pilot.press("enter")
        await finish_workers(app, pilot)
        seen.append(text_of(app, "#headline"))

    drive(station, script)
    assert seen == ["✗ 不是本系统格式的证书二维码"]


def test_the_screen_clears_after_the_timeout(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#scan", Input).value = cert.qr_text
        await pilot.press("enter")
        await pilot.pause(0.3)
        seen.append(text_of(app, "#headline"))
        seen.append(text_of(app, "#fields"))

    drive(station, script, clear_seconds=0.05)
    assert [e["verdict"] for e in KioskLog(station.home).entries()] == ["valid"]  # shown, then cleared
    assert seen == ["请出示证书二维码", ""]


def test_the_default_timeout_comes_from_the_station_setting(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    settings_path(station.home).write_text(json.dumps({"kiosk_clear_seconds": 45}))
    seen: list[object] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#scan", Input).value = cert.qr_text
        await pilot.press("enter")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, KioskScreen) and screen.clear_timer is not None
        seen.extend([screen.clear_timer._interval, text_of(app, "#headline")])
        screen.clear_timer._callback()  # type: ignore[misc]  # the timer firing, without waiting 45 s
        await pilot.pause()
        seen.append(text_of(app, "#headline"))

    drive(station, script)
    assert seen == [45, "✓ 证书有效", "请出示证书二维码"]


def test_the_log_is_pruned_to_the_retention_setting_on_start(issued: tuple[Station, Issued]) -> None:
    station, _ = issued
    settings_path(station.home).write_text(json.dumps({"retention_years": 2}))
    now = dt.datetime.now(dt.UTC)
    old, recent = now - dt.timedelta(days=3 * 366), now - dt.timedelta(days=300)
    log_path(station.home).write_text(
        "".join(
            json.dumps({"time": t.isoformat(), "number": n, "verdict": "valid", "reasons": []}) + "\n"
            for t, n in ((old, "OLD"), (recent, "RECENT"))
        )
    )

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        await pilot.pause()

    drive(station, script)
    assert [e["number"] for e in KioskLog(station.home).entries()] == ["RECENT"]


# --- leaving the kiosk ---------------------------------------------------------------------
def test_the_pin_guards_the_exit(issued: tuple[Station, Issued]) -> None:
    station, _ = issued
    delays: list[int] = []
    seen: list[object] = []

    def delay(failures: int) -> float:
        delays.append(failures)
        return 3600.0  # never waited for: the test fires the timer's callback itself

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert stack(app) == ["KioskScreen", "PinDialog"]
        await pilot.press(*"135790", "enter")
        await pilot.pause()
        pin = app.screen.query_one("#pin", Input)
        seen.extend([app.is_running, pin.disabled])
        await pilot.press(*PIN, "enter")  # locked: even the right PIN is not taken
        await pilot.pause()
        seen.append(app.is_running)
        app.unlock_pin()  # the lockout timer fires
        await pilot.pause()
        seen.append(pin.disabled)
        await pilot.press(*"000000", "enter")
        await pilot.pause()
        app.unlock_pin()
        await pilot.pause()
        await pilot.press("escape")  # back to the kiosk; the count of failures stays
        await pilot.pause()
        assert stack(app) == ["KioskScreen"] and app.is_running
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert stack(app) == ["KioskScreen", "PinDialog"]
        await pilot.press(*PIN, "enter")
        await pilot.pause()
        seen.append(app.is_running)

    app = drive(station, script, pin_delay=delay)
    assert seen == [True, True, True, False, False]
    assert delays == [1, 2] and app.return_code == 0


def test_lockout_grows_with_each_wrong_pin() -> None:
    assert [lockout_seconds(n) for n in range(6)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert lockout_seconds(40) == 300.0


def test_the_pin_is_a_salted_scrypt_hash_in_a_private_file(home: StationHome) -> None:
    set_pin(home, PIN)
    first = pin_path(home).read_text()
    set_pin(home, PIN)
    record = json.loads(pin_path(home).read_text())
    assert PIN not in first and record["kdf"] == "scrypt" and json.loads(first)["salt"] != record["salt"]
    assert stat.S_IMODE(os.stat(pin_path(home)).st_mode) == 0o600
    assert check_pin(home, PIN) and not check_pin(home, PIN + "1")


def test_no_key_binding_reaches_another_screen(issued: tuple[Station, Issued]) -> None:
    station, _ = issued
    station_keys = [k for b in StationApp.BINDINGS for k in str(b.key).split(",")]  # type: ignore[union-attr]
    keys = [*station_keys, "ctrl+p", "ctrl+z", "ctrl+c", "ctrl+d", "ctrl+s", "tab", "shift+tab", "escape"]
    keys += [f"f{n}" for n in range(1, 13)]
    stacks: list[tuple[str, list[str]]] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            stacks.append((key, stack(app)))
            assert app.is_running, key
            if isinstance(app.screen, PinDialog):
                await pilot.press("escape")
                await pilot.pause()
            assert stack(app) == ["KioskScreen"], key

    drive(station, script)
    assert {"f1", "f2", "f7", "ctrl+q"} <= {k for k, _ in stacks}
    for key, seen in stacks:
        assert seen in (["KioskScreen"], ["KioskScreen", "PinDialog"]), (key, seen)
        assert (seen[-1] == "PinDialog") == (key in ("ctrl+q", "ctrl+c")), key


# --- command line --------------------------------------------------------------------------
def test_cli_set_pin_twice_hidden_and_refusals(home: StationHome) -> None:
    runner = CliRunner()
    base = ["--home", str(home.root), "kiosk"]
    result = runner.invoke(cli, [*base], catch_exceptions=False)
    assert result.exit_code == 2 and "--set-pin" in result.output
    result = runner.invoke(cli, [*base, "--set-pin"], input=f"{PIN}\n{PIN}x\n", catch_exceptions=False)
    assert result.exit_code == 2 and "不一致" in result.output and not pin_path(home).exists()
    result = runner.invoke(cli, [*base, "--set-pin"], input="123\n", catch_exceptions=False)
    assert result.exit_code == 2 and "6-64" in result.output
    result = runner.invoke(cli, [*base, "--set-pin"], input=f"{PIN}\n{PIN}\n", catch_exceptions=False)
    assert result.exit_code == 0 and PIN not in result.output and check_pin(home, PIN)
    result = runner.invoke(cli, [*base], catch_exceptions=False)  # a PIN but no trust store
    assert result.exit_code == 2 and "信任库" in result.output


# --- what the counter sees -------------------------------------------------------------------
def test_kiosk_screen_snapshot(snap_compare: Any, issued: tuple[Station, Issued]) -> None:
    station, cert = issued

    async def scan(pilot: Pilot[None]) -> None:
        pilot.app.screen.query_one("#scan", Input).value = cert.qr_text
        await pilot.press("enter")
        await finish_workers(pilot.app, pilot)  # the verdict drawn, however busy the machine (one pause was not)

    fixed_age = KioskOptions(trust_age=lambda result: "吊销数据 20 天前（2026-11-01T08:00:00Z）")
    assert snap_compare(build_kiosk_app(station.home, fixed_age), terminal_size=(100, 34), run_before=scan)


def test_a_page_with_a_genuine_and_a_forged_code_shows_the_forged_one_large(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    station, cert = issued
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Image.fromarray(two_codes(cert)).save(inbox / "two.png")
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        for _ in range(2):
            app.screen.poll_folder()  # type: ignore[attr-defined]
            await finish_workers(app, pilot)
        seen.extend([text_of(app, "#headline"), text_of(app, "#fields")])

    drive(station, script, watch=inbox, poll_seconds=3600)
    assert seen[0] == "✗ 签名无效：内容被篡改或伪造" and "✓ 有效" in seen[1]
    assert sorted(e["verdict"] for e in KioskLog(station.home).entries()) == ["invalid", "valid"]
    assert (inbox / "failed" / "two.png").exists()


def test_a_genuine_and_a_forged_code_in_view_together_show_the_forged_one(
    issued: tuple[Station, Issued], tmp_path: Path
) -> None:
    station, cert = issued
    page = two_codes(cert)
    frame = np.full((page.shape[0] + 200, page.shape[1] + 200), 90, np.uint8)
    frame[100 : 100 + page.shape[0], 100 : 100 + page.shape[1]] = page
    video = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (frame.shape[1], frame.shape[0]))
    for _ in range(5):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        await finish_workers(app, pilot)
        seen.append(text_of(app, "#headline"))

    drive(station, script, camera=str(video))
    assert seen == ["✗ 签名无效：内容被篡改或伪造"]
    assert sorted(e["verdict"] for e in KioskLog(station.home).entries()) == ["invalid", "valid"]


def test_old_trust_data_is_stated_with_the_verdict(issued: tuple[Station, Issued]) -> None:
    station, cert = issued
    bundle = station.trust.load()
    as_of = (dt.datetime.now(dt.UTC) - dt.timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = InstitutionTrust(cert.record.number[:13], own=False, as_of=as_of, sequence=1, covered=1)
    station.trust.save(bundle.with_institution(state))  # as on a verifying station, 45 days after an import
    seen: list[str] = []

    async def script(app: KioskApp, pilot: Pilot[None]) -> None:
        app.screen.query_one("#scan", Input).value = cert.qr_text
        await pilot.press("enter")
        await pilot.pause()
        seen.extend([text_of(app, "#headline"), text_of(app, "#fields")])

    drive(station, script)
    assert seen[0] == "✓ 证书有效"
    assert "吊销数据 45 天前" in seen[1] and "超过 30 天" in seen[1]
