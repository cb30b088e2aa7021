"""kiosk: the ``certkiosk`` command line and the Textual station UI."""
