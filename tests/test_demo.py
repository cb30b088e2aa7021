"""`certkiosk demo`: the main job on the embedded default, twice (the second run reuses the first)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from certgen.station.register import Register
from kiosk.cli import cli
from kiosk.demo import DEMO_FILING, DEMO_INSTITUTION, demo_home


def test_demo_issues_renders_and_verifies_then_reuses_its_home(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", str(tmp_path), "demo"])
    assert first.exit_code == 0, first.output
    assert "发证：本次 20 张" in first.stdout and "核验：41 张证书，有效 41 张" in first.stdout
    assert first.stderr == ""  # the first thing a new user sees: no library tracebacks or warnings
    assert (tmp_path / "demo-scan.png").stat().st_size > 10_000
    assert f"certkiosk --home '{tmp_path}' ui" in first.stdout
    second = runner.invoke(cli, ["--home", str(tmp_path), "demo"])
    assert second.exit_code == 0 and "本次 0 张，此前已发 20 张" in second.stdout
    electronic = sorted((tmp_path / "issued").rglob("*-e.pdf"))
    assert len(electronic) == 20 and b"/ETSI.CAdES.detached" in electronic[0].read_bytes()
    with Register(tmp_path / "register.sqlite") as reg:
        assert reg.counts() == {"pending": 0, "issued": 20, "void": 0}
        assert reg.check() == []
        assert [k.filing_number for k in reg.institution_keys()] == [DEMO_FILING]
    assert "示例" in DEMO_INSTITUTION


def test_the_demo_never_uses_a_real_station_home(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from certgen.station.home import StationHome

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    real = StationHome(tmp_path / "real-station", "CERTKIOSK_HOME")
    assert demo_home(real).root != real.root
    assert demo_home(StationHome(tmp_path / "chosen", "--home")).root == tmp_path / "chosen"


def test_the_demo_reruns_on_a_home_whose_certificates_an_earlier_version_filed_under_another_batch(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A user who ran the demo with an earlier version runs it again: the same people are already
    issued, in the folder of the batch id that version gave the roster. The demo shows and verifies
    those certificates instead of failing on an empty folder (an IndexError traceback before)."""
    from certgen.issuing import batch

    identity = batch._identity
    monkeypatch.setattr(batch, "_identity", lambda scratch: "B" + identity(scratch)[:0:-1])  # the earlier id
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", str(tmp_path), "demo"])
    assert first.exit_code == 0, first.output
    monkeypatch.setattr(batch, "_identity", identity)
    second = runner.invoke(cli, ["--home", str(tmp_path), "demo"])
    assert second.exit_code == 0, second.output
    assert "本次 0 张，此前已发 20 张" in second.stdout and "核验：41 张证书，有效 41 张" in second.stdout
