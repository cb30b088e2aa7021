"""The ``certkiosk`` command line. Help in English and Chinese; messages in Chinese.

Every command is a thin shell over certgen / verify: it parses options, calls one function and
prints its result. Errors are shown as one line on stderr (exit 2), never as a traceback.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from certgen.exceptions import CertkioskError, ConfigError
from certgen.home import StationHome
from certgen.number import check_number, load_profiles
from certgen.register import STATUS_TEXT
from certgen.secret import Secret
from certgen.station import Station, describe_error
from certgen.trust import SCOPE_TEXT, grouped_fingerprint

ENV_PASSPHRASE = "CERTKIOSK_PASSPHRASE"


class CertkioskGroup(click.Group):
    """A group that turns certkiosk's errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CertkioskError, OSError) as exc:
            click.echo(f"错误：{describe_error(exc)}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("已取消。", err=True)
            ctx.exit(130)


def station_of(ctx: click.Context) -> Station:
    station = ctx.find_object(Station)
    if station is None:  # pragma: no cover - the root group always sets it
        raise ConfigError("内部错误：未确定站点目录")
    return station


def read_passphrase(path: Path | None, *, confirm: bool = False) -> Secret:
    """From ``--passphrase-file``, else ``$CERTKIOSK_PASSPHRASE``, else a hidden prompt."""
    if path is not None:
        try:
            return Secret(path.read_text("utf-8").rstrip("\r\n"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"无法读取口令文件 {path}：{getattr(exc, 'strerror', None) or exc}") from None
    env = os.environ.get(ENV_PASSPHRASE)
    if env:
        return Secret(env)
    if not sys.stdin.isatty():
        raise ConfigError(
            f"需要私钥口令：请用 --passphrase-file 或环境变量 {ENV_PASSPHRASE} 提供（非交互环境无法提示输入）"
        )
    return Secret(click.prompt("私钥口令 / Passphrase", hide_input=True, confirmation_prompt=confirm))


def json_line(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, sort_keys=False))


@click.group(cls=CertkioskGroup, invoke_without_command=True)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Station home folder (else $CERTKIOSK_HOME, else the user data folder). / 站点目录。",
)
@click.version_option(package_name="certkiosk")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """certkiosk: issue and check vocational skill level certificates offline.

    certkiosk：离线签发与核验职业技能等级证书。
    """
    ctx.obj = Station(StationHome.resolve(home))
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(ui)
        else:
            click.echo(ctx.get_help())


@cli.command()
@click.option(
    "--screen", type=click.Choice(["home", "issue", "batch", "verify", "archive", "keys", "register"]),
    default="home", show_default=True, help="Screen to open on. / 打开时显示的页面。",
)  # fmt: skip
@click.pass_context
def ui(ctx: click.Context, screen: str = "home") -> None:
    """Open the terminal UI (also: certkiosk with no command). / 打开终端界面。"""
    from kiosk.app import build_app

    build_app(station_of(ctx).home.ensure(), screen).run()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON. / 输出 JSON。")
@click.pass_context
def locate(ctx: click.Context, as_json: bool) -> None:
    """Show where the station keeps everything. / 显示站点各文件的位置。"""
    home = station_of(ctx).home
    places = home.locations()
    if as_json:
        json_line({"source": home.source} | {k: str(v) for k, v in places.items()})
        return
    labels = {
        "home": "站点目录", "keys": "私钥目录", "trust": "信任库", "register": "登记库",
        "issued": "证书输出", "profiles": "省份规则",
    }  # fmt: skip
    click.echo(f"站点目录来源：{home.source}")
    for key, path in places.items():
        state = "存在" if path.exists() else "尚未创建"
        click.echo(f"{labels[key]:<6}  {path}  （{state}）")


# --- number ----------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def number() -> None:
    """Certificate numbers (002 附件5). / 证书编号。"""


@number.command("check")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def number_check(ctx: click.Context, numbers: tuple[str, ...], as_json: bool) -> None:
    """Check certificate numbers; exit 1 if any is invalid. / 检查证书编号，有无效则退出码为1。"""
    profiles = load_profiles(station_of(ctx).home.profiles_dir)
    all_valid = True
    for text in numbers:
        result = check_number(text, profiles=profiles)
        all_valid &= result.valid
        if as_json:
            json_line(result.to_json())
            continue
        click.echo(f"{'✓' if result.valid else '✗'} {text}  {'有效' if result.valid else '无效'}")
        for line in result.explain() if result.valid else result.errors:
            click.echo(f"    {line}")
    ctx.exit(0 if all_valid else 1)


# --- keys ------------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def keys() -> None:
    """Institution signing keys. / 机构签名密钥。"""


@keys.command("new")
@click.option(
    "--institution", "filing_number", required=True, help="Filing number, 13 characters. / 机构备案号（13位）。"
)
@click.option("--name", required=True, help="Institution name as filed. / 机构名称（与备案一致）。")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the passphrase. / 口令文件。",
)
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), help="First valid day (default today). / 生效日期。")
@click.option("--years", type=int, default=10, show_default=True, help="Validity in years. / 有效年限。")
@click.pass_context
def keys_new(
    ctx: click.Context, filing_number: str, name: str, passphrase_file: Path | None,
    valid_from: _dt.datetime | None, years: int,
) -> None:  # fmt: skip
    """Create the institution's key (rolls over an existing one). / 创建机构密钥（已有则轮换）。"""
    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file, confirm=True)
    info, previous = station.new_key(
        filing_number, name, passphrase, valid_from=valid_from.date() if valid_from else None, years=years
    )
    click.echo(f"已创建密钥 {info.kid_hex}：{info.filing_number} {info.institution}")
    click.echo(
        f"有效期 {info.valid_from.isoformat()} 至 {info.valid_until.isoformat() if info.valid_until else '长期'}"
    )
    click.echo(f"私钥（已加密，权限0600）：{station.keystore.path_for(info.kid)}")
    if previous is not None:
        click.echo(f"原密钥 {previous.kid_hex} 已轮换：有效期截至 {previous.valid_until}，仍用于核验此前的证书")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List the keys this station knows. / 列出本站已知的密钥。"""
    listings = station_of(ctx).list_keys()
    if not listings:
        click.echo("本站没有任何密钥。用 certkiosk keys new 创建，或用 certkiosk trust import 导入信任包。")
        return
    for item in listings:
        info = item.info
        if as_json:
            json_line(info.to_json() | {"has_private_key": item.has_private, "revoked": item.revoked})
            continue
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        flags = ("本站私钥" if item.has_private else "仅公钥") + ("，已吊销" if item.revoked else "")
        click.echo(f"{info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}  [{flags}]")


# --- trust -----------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def trust() -> None:
    """Trusted keys and revocations. / 信任库（受信密钥与吊销）。"""


@trust.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def trust_export(ctx: click.Context, file: Path) -> None:
    """Write the trust bundle and print its fingerprint. / 导出信任包并显示指纹。"""
    fingerprint = station_of(ctx).export_trust(file)
    click.echo(f"已导出信任包：{file}")
    click.echo(f"SHA-256 指纹：{grouped_fingerprint(fingerprint)}")
    click.echo("请通过电话或书面等其他渠道与接收方核对此指纹。")


@trust.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def trust_import(ctx: click.Context, file: Path) -> None:
    """Merge a trust bundle (never replaces a different key). / 导入信任包（不会替换不同的密钥）。"""
    result, fingerprint = station_of(ctx).import_trust(file)
    click.echo(f"信任包 SHA-256 指纹：{grouped_fingerprint(fingerprint)}（请与发送方核对）")
    added, updated = len(result.added_keys), len(result.updated_keys)
    click.echo(f"新增密钥 {added} 个，更新 {updated} 个，新增吊销 {result.added_revocations} 条")
    for kid in result.added_keys:
        info = result.bundle.key(bytes.fromhex(kid))
        assert info is not None
        click.echo(f"  + {kid}  {info.filing_number}  {info.institution}")


@trust.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle as JSON. / 以 JSON 输出。")
@click.pass_context
def trust_list(ctx: click.Context, as_json: bool) -> None:
    """Show trusted keys and revocations. / 显示受信密钥与吊销。"""
    bundle = station_of(ctx).trust.load()
    if as_json:
        click.echo(bundle.to_bytes().decode("utf-8"), nl=False)
        return
    fingerprint = grouped_fingerprint(bundle.fingerprint())
    click.echo(f"受信密钥 {len(bundle.keys)} 个，吊销 {len(bundle.revocations)} 条；指纹 {fingerprint}")
    for info in bundle.keys:
        until = info.valid_until.isoformat() if info.valid_until else "长期"
        click.echo(f"  {info.kid_hex}  {info.filing_number}  {info.institution}  {info.valid_from}~{until}")
    for rev in bundle.revocations:
        click.echo(f"  吊销{SCOPE_TEXT[rev.scope]} {rev.target}（{rev.revoked_at}）：{rev.reason}")


# --- register --------------------------------------------------------------------------------
@cli.group(cls=CertkioskGroup)
def register() -> None:
    """The issuance register. / 发证登记库。"""


@register.command("check")
@click.pass_context
def register_check(ctx: click.Context) -> None:
    """Verify the audit chain and the tables; exit 1 on tampering. / 校验审计链与登记表。"""
    station = station_of(ctx)
    if not station.home.register_path.exists():
        raise ConfigError(f"登记库 {station.home.register_path} 不存在")
    with station.register() as reg:
        problems = reg.check()
        counts = reg.counts()
        entries = len(reg.audit_entries())
    click.echo(
        f"审计日志 {entries} 条；证书：已发证 {counts['issued']}，作废 {counts['void']}，未完成 {counts['pending']}"
    )
    if problems:
        click.echo(f"发现 {len(problems)} 处问题：")
        for problem in problems:
            click.echo(f"  ✗ {problem}")
        ctx.exit(1)
    click.echo("✓ 登记库完整：审计链未被篡改")


@register.command("find")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line. / 每行一个 JSON 对象。")
@click.pass_context
def register_find(ctx: click.Context, text: str, as_json: bool) -> None:
    """Search by number, name or ID number. / 按编号、姓名或证件号码查找。"""
    with station_of(ctx).register() as reg:
        found = reg.find(text)
        revoked = {r.target for r in reg.revocations()} | {n for r in reg.revocations() for n in r.numbers}
    if not found:
        click.echo(f"没有找到包含「{text}」的证书")
    for item in found:
        if as_json:
            json_line(
                {
                    "number": item.number,
                    "status": item.status,
                    "revoked": item.number in revoked,
                    "batch_id": item.batch_id,
                    "record": item.record.to_dict(),
                    "output_path": item.output_path,
                }
            )
            continue
        mark = "，已吊销" if item.number in revoked else ""
        click.echo(f"{item.number}  {item.record.name}  {item.record.level_text}  {STATUS_TEXT[item.status]}{mark}")


@register.command("revoke")
@click.option("--certificate", "number", help="A certificate number. / 证书编号。")
@click.option("--batch", help="A batch id. / 批次号。")
@click.option("--key", "kid", help="A key id (hex). / 密钥标识。")
@click.option("--reason", required=True, help="Why (recorded in the audit log). / 吊销原因。")
@click.pass_context
def register_revoke(ctx: click.Context, number: str | None, batch: str | None, kid: str | None, reason: str) -> None:
    """Revoke a certificate, a whole batch or a key. / 吊销证书、整批证书或密钥。"""
    chosen = [(s, t) for s, t in (("certificate", number), ("batch", batch), ("key", kid)) if t]
    if len(chosen) != 1:
        raise click.UsageError("请恰好指定 --certificate、--batch 或 --key 之一")
    scope, target = chosen[0]
    revocation = station_of(ctx).revoke(scope, target, reason)  # type: ignore[arg-type]
    extra = f"（含 {len(revocation.numbers)} 张证书）" if revocation.numbers else ""
    click.echo(f"已吊销 {target}{extra}：{reason}")
    click.echo("请重新导出信任包（certkiosk trust export）并分发给核验方。")


# --- verify ----------------------------------------------------------------------------------
@cli.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--text", "texts", multiple=True, help="QR text as a scanner types it (repeatable). / 二维码文本。")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate. / 每张证书一行 JSON。")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes (default: the core count). / 进程数。")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write .csv, .json or .html. / 报告。")
@click.option(
    "--decoder",
    type=click.Choice(["zxing", "pyzbar"]),
    default="zxing",
    show_default=True,
    help="QR decoder. / 解码器。",
)
@click.option("--force", is_flag=True, help="Re-check files an earlier run already checked. / 重新核验全部文件。")
@click.pass_context
def verify_cmd(
    ctx: click.Context, paths: tuple[Path, ...], texts: tuple[str, ...], as_json: bool, workers: int | None,
    report: Path | None, decoder: str, force: bool,
) -> None:  # fmt: skip
    """Verify certificates offline; exit 0 if all valid, 1 if not, 2 on a usage error. / 离线核验证书。

    PATHs are images, PDFs, folders or ZIP archives (re-runs skip files already checked).
    Without PATH or --text, reads QR texts from standard input, one per line (what a
    keyboard-wedge scanner types). 路径可为图片、PDF、文件夹或ZIP；否则从标准输入逐行读取扫码枪输入。
    """
    from verify.archive import default_state_path, run_archive
    from verify.check import clean_scanned_text, verify_text

    station = station_of(ctx)
    bundle = station.trust_for_verifying()
    if report is not None and report.suffix.lower() not in (".csv", ".json", ".html", ".htm"):
        raise click.UsageError(f"报告文件 {report} 的扩展名应为 .csv、.json 或 .html")
    profiles = load_profiles(station.home.profiles_dir)
    results = [verify_text(clean_scanned_text(t), bundle, source="--text", profiles=profiles) for t in texts]
    if not paths and not texts:
        if sys.stdin.isatty():
            raise click.UsageError("请给出文件、文件夹或 --text，或用扫码枪/管道从标准输入输入")
        results = [
            verify_text(clean_scanned_text(line), bundle, source=f"stdin:{i}", profiles=profiles)
            for i, line in enumerate(sys.stdin, 1) if line.strip()
        ]  # fmt: skip
    run = None
    if paths:
        station.home.ensure()
        state = default_state_path(station.home.root / "verify-runs", list(paths))
        with _progress(0, "核验") as advance:
            run = run_archive(
                list(paths), bundle, state_path=state, workers=workers, decoder=decoder,  # type: ignore[arg-type]
                force=force, profiles=profiles, progress=lambda done, total: advance(done, total, ""),
            )  # fmt: skip
        results += run.results
    for result in results:
        if as_json:
            json_line(result.summary())
        else:
            click.echo(result.line())
            for note in result.notes:
                click.echo(f"    注：{note}")
    if run is not None and not as_json:
        totals = run.totals()
        click.echo(
            f"共 {run.files} 个文件、{len(run.results)} 张证书：有效 {totals['valid']}，无效 {totals['invalid']}，"
            f"无法读取 {totals['unreadable']}"
            + (f"（{run.resumed} 个文件沿用上次中断前的结果）" if run.resumed else "")
        )
        if run.skipped:
            click.echo(f"跳过 {len(run.skipped)} 个既非图片也非PDF的文件（如 {run.skipped[0]}）")
    if report is not None and run is not None:
        from verify.report import write_report

        write_report(run, report)
        click.echo(f"报告已写入 {report}", err=as_json)
    ctx.exit(0 if results and all(r.valid for r in results) else 1)


# --- issue -------------------------------------------------------------------------------------
@cli.command("issue")
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--photos", type=click.Path(file_okay=False, path_type=Path), help="Folder of photos named in 照片. / 照片目录。"
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder. / 输出目录。")
@click.option("--template", "template_name", default="liaoning-2020", show_default=True, help="Template id. / 模板。")
@click.option("--institution", "filing_number", help="Filing number of the issuing institution. / 机构备案号。")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the passphrase. / 口令文件。",
)
@click.option("--seal", type=click.Path(dir_okay=False, path_type=Path), help="Seal image (PNG). / 印章图片。")
@click.option("--skip-invalid", is_flag=True, help="Issue the valid rows, list the others. / 跳过无效行。")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Processes. / 进程数。")
@click.pass_context
def issue_cmd(
    ctx: click.Context, roster: Path, photos: Path | None, out_dir: Path | None, template_name: str,
    filing_number: str | None, passphrase_file: Path | None, seal: Path | None, skip_invalid: bool, workers: int,
) -> None:  # fmt: skip
    """Issue certificates from a roster (CSV, XLSX or JSON). / 按名册批量发证。

    Every row is checked first; by default nothing is issued if any row is bad. Re-running the
    same roster completes an interrupted batch without issuing anyone twice.
    先检查所有行，有错误则（默认）不发任何证书；重新运行同一名册可续发中断的批次。
    """
    from certgen.batch import plan_batch, run_batch
    from certgen.issue import Issuer
    from certgen.roster import read_roster

    station = station_of(ctx)
    passphrase = read_passphrase(passphrase_file)
    issuer = Issuer(station, passphrase, filing_number, template_name, out_dir, seal)
    data = read_roster(roster)
    with station.register() as reg:
        plan = plan_batch(issuer, reg, data, photos)
    click.echo(f"名册 {roster}（{data.encoding}）：{len(data.rows)} 行，批次 {plan.batch_id}")
    if plan.done:
        click.echo(f"其中 {len(plan.done)} 行已在此前的运行中发证，将跳过")
    if plan.problems:
        click.echo(f"发现 {len(plan.problems)} 处错误：", err=True)
        for problem in plan.problems:
            click.echo(f"  ✗ {problem}", err=True)
        if not skip_invalid:
            click.echo("未发任何证书。请修正名册后重新运行，或用 --skip-invalid 只发有效行。", err=True)
            ctx.exit(1)
    with _progress(len(plan.to_issue), "发证") as advance:
        result = run_batch(issuer, plan, skip_invalid=skip_invalid, workers=workers, progress=advance)
    if result.voided:
        click.echo(f"作废了上次中断时未完成的编号：{', '.join(result.voided)}")
    click.echo(f"本次发证 {result.issued} 张，跳过已发 {result.skipped} 张；证书与报表在 {result.folder}")
    for path in result.reports:
        click.echo(f"  {path.name}")
    ctx.exit(1 if result.problems else 0)


@cli.group(cls=CertkioskGroup)
def layout() -> None:
    """Certificate layout. / 证书版式。"""


@layout.command("check")
@click.argument("pdf", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--template", "template_name", default="liaoning-2020", show_default=True, help="Template id. / 模板。")
@click.option("--json", "as_json", is_flag=True, help="Print JSON. / 输出 JSON。")
@click.pass_context
def layout_check_cmd(ctx: click.Context, pdf: Path, template_name: str, as_json: bool) -> None:
    """Measure a PDF against a template; exit 1 on a deviation over 0.2 mm / 0.1 pt.

    按模板测量PDF版式，偏差超过0.2mm或0.1磅时退出码为1。
    """
    from certgen.layout_check import measure, report
    from certgen.template import load_template

    template = load_template(template_name, station_of(ctx).home.root / "templates")
    rows, problems = measure(pdf, template)
    ok = all(m.ok for m in rows) and not problems
    if as_json:
        json_line({
            "file": str(pdf), "template": template.id, "ok": ok, "problems": problems,
            "measurements": [
                {"item": m.item, "expected": m.expected, "actual": m.actual, "unit": m.unit, "ok": m.ok} for m in rows
            ],
        })  # fmt: skip
    else:
        click.echo(f"{pdf}  模板 {template.id}")
        for line in report(rows, problems):
            click.echo(line)
        click.echo("✓ 版式符合模板" if ok else "✗ 版式与模板不符")
    ctx.exit(0 if ok else 1)


class _progress:
    """A progress bar with rate and ETA on a terminal (stderr); silent otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int, str], None]:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(self.label), BarColumn(), TaskProgressColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.speed:.1f}/秒" if False else "{task.fields[note]}"), TimeRemainingColumn(),
                transient=True, console=Console(stderr=True),
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total or None, note="")
        return self.advance

    def advance(self, done: int, total: int, note: str) -> None:
        if self.bar is not None:
            speed = self.bar.tasks[0].speed
            rate = f"{speed:.1f}/秒" if speed else ""
            self.bar.update(self.task, completed=done, total=total, note=note or rate)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


# --- printing ----------------------------------------------------------------------------------
@cli.command("print")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--printer", "queue", help="CUPS queue (default: the system default). / 打印机队列。")
@click.option("--copies", type=click.IntRange(1, 99), default=1, show_default=True, help="Copies. / 份数。")
@click.option("--list", "list_queues_flag", is_flag=True, help="List the queues and exit. / 列出打印机。")
@click.pass_context
def print_cmd(
    ctx: click.Context, files: tuple[Path, ...], queue: str | None, copies: int, list_queues_flag: bool
) -> None:
    """Print certificates at 100% on A4 through CUPS. / 通过 CUPS 按 100% 比例在 A4 上打印证书。"""
    from certgen.printing import print_files

    home = station_of(ctx).home.ensure()
    for job in print_files(home, list(files), queue, copies):
        shift = f"，校准偏移 x{job.offset_mm[0]:+g}mm y{job.offset_mm[1]:+g}mm" if job.offset_mm != (0.0, 0.0) else ""
        click.echo(f"已提交 {job.file.name} → {job.queue}，任务号 {job.job_id}，{job.copies} 份{shift}")


@cli.command("printers")
def printers_cmd() -> None:
    """List CUPS queues and their state. / 列出打印机及其状态。"""
    from certgen.printing import list_queues

    queues = list_queues()
    if not queues:
        click.echo("CUPS 中没有打印机")
    for q in queues:
        click.echo(
            f"{q.name}{'（默认）' if q.default else ''}  {q.state_text}  {'接受任务' if q.accepting else '不接受任务'}"
        )


@cli.command("calibrate")
@click.option("--printer", "queue", help="CUPS queue. / 打印机队列。")
@click.option("--offset-x", type=float, help="Store this x offset in mm (right is positive). / 保存x偏移（mm）。")
@click.option("--offset-y", type=float, help="Store this y offset in mm (up is positive). / 保存y偏移（mm）。")
@click.option(
    "--save",
    "save_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the page to a PDF. / 另存校准页。",
)
@click.pass_context
def calibrate_cmd(
    ctx: click.Context, queue: str | None, offset_x: float | None, offset_y: float | None, save_to: Path | None
) -> None:
    """Print a calibration page, or store the offset measured on it. / 打印校准页，或保存测得的偏移。"""
    from certgen.home import write_bytes_atomic
    from certgen.printing import calibration_pdf, find_queue, load_offsets, save_offset, submit

    home = station_of(ctx).home.ensure()
    if offset_x is not None or offset_y is not None:
        chosen = find_queue(queue).name
        old = load_offsets(home).get(chosen, (0.0, 0.0))
        x = offset_x if offset_x is not None else old[0]
        y = offset_y if offset_y is not None else old[1]
        save_offset(home, chosen, x, y)
        click.echo(f"已保存打印机 {chosen} 的偏移：x {x:+g}mm，y {y:+g}mm（只作用于打印副本，PDF文件不变）")
        return
    data = calibration_pdf()
    if save_to is not None:
        write_bytes_atomic(save_to, data)
        click.echo(f"校准页已保存到 {save_to}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibration.pdf"
        path.write_bytes(data)
        target = find_queue(queue)
        job = submit(path, target, 1, (0.0, 0.0), "certkiosk 打印校准页")
    click.echo(
        f"校准页已提交 {job.queue}，任务号 {job.job_id}。按页面上的说明测量后，用 --offset-x/--offset-y 保存偏移。"
    )


# --- demo --------------------------------------------------------------------------------------
@cli.command("demo")
@click.pass_context
def demo_cmd(ctx: click.Context) -> None:
    """Run the whole job on a built-in example, offline. / 用内置示例离线演示完整流程。

    Uses its own demo home (or --home when given): creates a fictional institution and its key,
    issues the sample roster, renders one certificate to a scan and verifies everything.
    使用单独的演示目录，不会影响真实站点。
    """
    from kiosk.demo import demo_home, run_demo

    home = demo_home(station_of(ctx).home)
    click.echo(f"演示目录：{home.root}")
    result = run_demo(home, say=click.echo)
    click.echo(f"核验：{result.verified} 张证书，有效 {result.valid} 张")
    for line in result.problems:
        click.echo(line)
    click.echo("")
    click.echo(f"证书与报表：{result.batch.folder}")
    click.echo(f"扫描图：    {result.scan}")
    click.echo(f"打开终端界面：certkiosk --home '{result.home}' ui")
    ctx.exit(0 if result.valid == result.verified and not result.problems else 1)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="certkiosk")


if __name__ == "__main__":  # pragma: no cover
    main()
