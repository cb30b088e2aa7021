"""Issue 11: fuzzing archives. Whatever the files and ZIP structures, and whatever changed since the
last run (content swapped, revocations imported), a run finishes, writes its report, and calls
valid only a file whose bytes are a genuine certificate not revoked in the current trust store."""

from __future__ import annotations

import functools
import json
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certgen.trust import Revocation
from tests.test_verify import TODAY, base_claims, png, qr_image, signed_text, trust
from tests.vectors.payload import make_vectors as mv
from verify.archive import run_archive
from verify.report import write_report

NUMBERS = [f"Y000021012001203{i:06d}" for i in range(1, 4)]


@functools.cache
def genuine(i: int) -> bytes:
    return png(qr_image(signed_text(base_claims(number=NUMBERS[i]))))


@functools.cache
def forged(i: int) -> bytes:
    return png(qr_image(signed_text(base_claims(number=NUMBERS[i]), mv.other_key())))  # another institution


def content(kind: tuple[str, int, bytes]) -> bytes:
    what, i, noise = kind
    if what == "genuine":
        return genuine(i)
    if what == "forged":
        return forged(i)
    if what == "truncated":
        return genuine(i)[: len(genuine(i)) * len(noise) // 130]  # at most half of it
    if what == "padded":
        return genuine(i) + noise  # still genuine: readers ignore bytes after the image
    return noise


kinds = st.tuples(
    st.sampled_from(["genuine", "forged", "truncated", "padded", "noise"]),
    st.integers(0, len(NUMBERS) - 1),
    st.binary(max_size=64),
)
names = st.sampled_from(["a.png", "a.png", "b.jpg", "scan.pdf", ".hidden.png", "__MACOSX/._a.png", "x/c.png", "n.txt"])
members = st.lists(st.tuples(names, kinds), max_size=6)


def _expected_valid(kind: tuple[str, int, bytes], revoked: set[str]) -> bool:
    what, i, _ = kind
    return what in ("genuine", "padded") and NUMBERS[i] not in revoked


def _write(folder: Path, files: list[tuple[str, tuple[str, int, bytes]]], zipped: list) -> dict[str, bytes]:  # type: ignore[type-arg]
    """Write the inputs; returns the bytes behind every source name the run will report."""
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    by_source: dict[str, bytes] = {}
    for index, (name, kind) in enumerate(files):
        path = folder / f"{index}-{Path(name).name}"
        path.write_bytes(content(kind))
        by_source[str(path)] = content(kind)
    archive = folder / "z.zip"
    seen: dict[str, int] = {}
    with zipfile.ZipFile(archive, "w") as z:
        for name, kind in zipped:
            seen[name] = seen.get(name, 0) + 1
            with z.open(zipfile.ZipInfo(name), "w") as member:  # repeated names are written as they are
                member.write(content(kind))
            suffix = f"#{seen[name]}" if seen[name] > 1 else ""
            by_source[f"{archive}!{name}{suffix}"] = content(kind)
    return by_source


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.tuples(members, members),
    second=st.tuples(members, members),
    revoke=st.sets(st.sampled_from(NUMBERS)),
    revoke_key=st.booleans(),
)
def test_archive_runs_finish_report_and_never_call_unverified_bytes_valid(
    first: tuple[list, list],  # type: ignore[type-arg]
    second: tuple[list, list],  # type: ignore[type-arg]
    revoke: set[str],
    revoke_key: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "in"
        state = root / "state.sqlite"
        stores = [trust(), trust().with_revocations(
            [Revocation("certificate", n, "测试", "2026-01-01T00:00:00Z") for n in revoke]
            + ([Revocation("key", mv.kid(mv.test_key()).hex(), "测试", "2026-01-01T00:00:00Z")] if revoke_key else [])
        )]  # fmt: skip
        for (files, zipped), bundle, revoked in (
            (first, stores[0], set()),
            (second, stores[1], set(NUMBERS) if revoke_key else revoke),
        ):
            by_source = _write(folder, files, zipped)
            run = run_archive([folder], bundle, state_path=state, workers=1, today=TODAY)
            report = root / "report.json"
            write_report(run, report)
            assert json.loads(report.read_text("utf-8"))["totals"] == run.totals()
            kinds_by_bytes = {content(k): k for _, k in files + zipped}
            for result in run.results:
                if not result.valid:
                    continue
                data = by_source[result.source]
                kind = kinds_by_bytes[data]
                assert _expected_valid(kind, revoked), (result.source, kind, revoked)
                assert result.claims is not None and result.claims.number not in revoked
            wanted = sum(1 for name, _ in files if Path(name).suffix in (".png", ".jpg", ".pdf")) + sum(
                1 for name, _ in zipped
                if Path(name).suffix in (".png", ".jpg", ".pdf") and not name.startswith((".", "__MACOSX"))
            )  # fmt: skip
            assert run.files == wanted
