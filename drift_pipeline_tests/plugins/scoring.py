"""Fixtures for the scoring tests."""
