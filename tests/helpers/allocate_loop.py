"""Child process for the crash test: allocate and complete numbers forever, reporting each step.

Usage: python -m tests.helpers.allocate_loop REGISTER_PATH
Prints ``A <number>`` once an allocation is committed and ``C <number>`` once it is completed.
It first voids what an earlier (killed) run left pending, as a station does when it restarts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

from certgen.station.register import Register
from tests.conftest import FILING, make_record


def main() -> None:
    register = Register(Path(sys.argv[1]))
    register.void_pending()
    records = [make_record(level=level, issue_date=dt.date(year, 6, 1)) for year in (2020, 2021) for level in (3, 5)]
    i = 0
    while True:
        numbered = register.allocate(records[i % len(records)], FILING, batch_id="crash")
        print("A", numbered.number, flush=True)
        digest = hashlib.sha256(str(numbered.number).encode()).hexdigest()
        register.complete(str(numbered.number), payload_sha256=digest, output_path=None, kid="00" * 8)
        print("C", numbered.number, flush=True)
        i += 1


if __name__ == "__main__":
    main()
