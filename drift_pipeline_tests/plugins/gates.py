"""Fixtures for the gates tests."""
