"""certgen: the certificate record, number rule, keys, QR payload, register and PDF rendering.

The modules ``record``, ``number``, ``levels``, ``idtypes``, ``provinces``, ``keys``, ``trust``
and ``payload`` are pure (no drawing libraries) and are what ``verify`` builds on.
"""

__version__ = "0.1.0"
