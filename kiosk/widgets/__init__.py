"""Widgets shared by the station's screens."""
