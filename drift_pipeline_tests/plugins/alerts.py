"""Fixtures for the alerts tests."""
