"""`certkiosk layout check`: measure a PDF against its template."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk.cli.base import CertkioskGroup, cli, json_line, station_of


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
    from certgen.pdf.measure import font_note, measure, report
    from certgen.pdf.template import load_template

    template = load_template(template_name, station_of(ctx).home.templates_dir)
    rows, problems = measure(pdf, template)
    ok = all(m.ok for m in rows) and not problems
    font = font_note(pdf, template)
    if as_json:
        json_line({
            "file": str(pdf), "template": template.id, "ok": ok, "problems": problems, "font": font,
            "measurements": [
                {"item": m.item, "expected": m.expected, "actual": m.actual, "unit": m.unit, "ok": m.ok} for m in rows
            ],
        })  # fmt: skip
    else:
        click.echo(f"{pdf}  模板 {template.id}")
        for line in report(rows, problems):
            click.echo(line)
        click.echo(font)
        click.echo("✓ 版式符合模板" if ok else "✗ 版式与模板不符")
    ctx.exit(0 if ok else 1)
