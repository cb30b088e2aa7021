"""Child process for the crash test: allocate and complete numbers forever, reporting each step.

Usage: python -m tests.helpers.allocate_loop REGISTER_PATH
Prints ``A <number>`` once an allocation is committed and ``C <number>`` once it is completed.
It first voids what an earlier (killed) run left pending, as a station does when it restarts.
Issuing commits are signed with the station's key when the register is in a station home with
one (passphrase: the tests'), else with the fixed test signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
from pathlib import Path

import certgen.station.keys
from certgen.station import Station
from certgen.station.home import StationHome
from certgen.station.register import Register
from tests.conftest import FAST_KDF, FILING, PASSPHRASE, TEST_SIGNER, make_record, resident_id


def report(step: str, number: str) -> None:
    """One line in one write(2), so a kill never leaves half a line."""
    os.write(1, f"{step} {number}\n".encode("ascii"))


def main() -> None:
    certgen.station.keys.KDF = FAST_KDF  # type: ignore[assignment]  # as the tests' fast_kdf fixture: no re-wrap
    path = Path(sys.argv[1])
    register = Register(path)
    station = Station(StationHome(path.parent, "--home"))
    if station.keystore.kids():
        register.signer = station.checkpoint_signer(register, PASSPHRASE)
    else:
        register.signer = TEST_SIGNER  # type: ignore[assignment]
    register.void_pending()
    shapes = [(year, level) for year in (2020, 2021) for level in (3, 5)]
    i = register._db.execute("SELECT count(*) FROM certificates").fetchone()[0]  # a new person each time
    while True:
        year, level = shapes[i % len(shapes)]
        record = make_record(id_number=resident_id(i), level=level, issue_date=dt.date(year, 6, 1))
        numbered = register.allocate(record, FILING, batch_id="crash")
        report("A", str(numbered.number))
        digest = hashlib.sha256(str(numbered.number).encode()).hexdigest()
        register.complete(str(numbered.number), payload_sha256=digest, output_path=None, kid="00" * 8)
        report("C", str(numbered.number))
        i += 1


if __name__ == "__main__":
    main()
