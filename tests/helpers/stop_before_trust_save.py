"""Child process: ``certkiosk ARGS`` that SIGSTOPs itself just before it writes the trust store
(so a test can interleave another real process with its read-change-write deterministically).

Usage: python -m tests.helpers.stop_before_trust_save --home HOME trust stale-after 10
"""

from __future__ import annotations

import os
import signal
import sys

from certgen.trust import TrustBundle, TrustStore

_save = TrustStore.save


def _stopping_save(self: TrustStore, bundle: TrustBundle) -> None:
    os.kill(os.getpid(), signal.SIGSTOP)
    _save(self, bundle)


TrustStore.save = _stopping_save  # type: ignore[method-assign]

if __name__ == "__main__":
    from kiosk.cli import main

    sys.argv[0] = "certkiosk"
    main()
