"""Hostile-input corpus shared by the hostile integration and fuzz tests."""
