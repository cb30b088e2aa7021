"""The certkiosk command line: exit codes, JSON output, messages, and no secrets printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kiosk.cli import cli
from tests.conftest import FILING, INSTITUTION, PASSPHRASE


def run(*args: str, home: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    argv = (["--home", str(home)] if home else []) + list(args)
    result = runner.invoke(cli, argv, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_number_check_exit_codes_and_json(tmp_path: Path) -> None:
    code, out, _ = run("number", "check", "Y000021012001203000001", home=tmp_path)
    assert code == 0 and "有效" in out and "第16位 等级代码 3：三级/高级工" in out
    code, out, _ = run("number", "check", "Y000021012001203000001", "Y000021012001207000001", "--json", home=tmp_path)
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["valid"] for x in lines] == [True, False]
    assert lines[1]["errors"] == ["第16位 等级代码 7 无效：应为1-5"]
    assert set(lines[0]) >= {"number", "valid", "errors", "parts"}


def test_home_resolution_and_locate(tmp_path: Path) -> None:
    code, out, _ = run("locate", "--json", env={"CERTKIOSK_HOME": str(tmp_path / "env-home")})
    data = json.loads(out)
    assert code == 0 and data["source"] == "CERTKIOSK_HOME" and data["home"] == str(tmp_path / "env-home")
    code, out, _ = run("locate", "--json", home=tmp_path / "opt", env={"CERTKIOSK_HOME": str(tmp_path / "env-home")})
    assert json.loads(out)["home"] == str(tmp_path / "opt")
    code, out, _ = run("locate", env={"CERTKIOSK_HOME": "", "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert "platformdirs" in out and str(tmp_path / "xdg") in out


def test_keys_new_from_a_passphrase_file_prints_no_secret(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE + "\n", "utf-8")
    code, out, err = run("keys", "new", "--institution", FILING, "--name", INSTITUTION,
                         "--passphrase-file", str(secret), home=tmp_path / "h")  # fmt: skip
    assert code == 0, err
    assert "已创建密钥" in out
    pem = next((tmp_path / "h" / "keys").glob("*.pem")).read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert PASSPHRASE not in out + err and body[:40] not in out + err
    code, out, _ = run("keys", "list", "--json", home=tmp_path / "h")
    listed = json.loads(out)
    assert listed["filing_number"] == FILING and listed["has_private_key"] is True


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    code, _out, err = run("keys", "new", "--institution", "Y000021152001", "--name", "x",
                         home=tmp_path, env={"CERTKIOSK_PASSPHRASE": PASSPHRASE})  # fmt: skip
    assert code == 2
    assert err.startswith("错误：机构备案号「Y000021152001」无效") and "Traceback" not in err
    code, _, err = run("trust", "import", str(tmp_path / "missing.json"), home=tmp_path)
    assert code == 2 and "无法读取信任包" in err and "missing.json" in err


def test_no_passphrase_without_a_terminal_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("keys", "new", "--institution", FILING, "--name", INSTITUTION, home=tmp_path,
                       env={"CERTKIOSK_PASSPHRASE": ""})  # fmt: skip
    assert code == 2 and "--passphrase-file" in err


def test_register_check_and_revoke_from_the_command_line(tmp_path: Path) -> None:
    env = {"CERTKIOSK_PASSPHRASE": PASSPHRASE}
    assert run("keys", "new", "--institution", FILING, "--name", INSTITUTION, home=tmp_path, env=env)[0] == 0
    code, out, _ = run("register", "check", home=tmp_path)
    assert code == 0 and "✓ 登记库完整" in out
    kid = json.loads(run("keys", "list", "--json", home=tmp_path)[1])["kid"]
    code, out, err = run("register", "revoke", "--key", kid, "--reason", "私钥泄露", home=tmp_path)
    assert code == 2 and "需要私钥口令" in err  # a revocation is signed: it needs the key
    code, out, _ = run("register", "revoke", "--key", kid, "--reason", "私钥泄露", home=tmp_path, env=env)
    assert code == 0 and "已吊销" in out
    code, out, _ = run("register", "check", home=tmp_path)
    assert code == 0 and "✓ 登记库完整" in out
    code, out, _ = run("trust", "list", home=tmp_path)
    assert "吊销密钥" in out and "私钥泄露" in out


def test_python_dash_m_kiosk_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "--home", str(tmp_path), "number", "check", "Y000021012001203000001"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "有效" in done.stdout


def test_print_without_files_or_list_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run("print", home=tmp_path)
    assert code == 2 and out == ""
    assert "请给出要打印的PDF文件，或用 --list 列出打印机" in err and "print [OPTIONS] [FILES]" in err
    assert "Traceback" not in err
