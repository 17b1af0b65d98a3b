"""Fixtures for the traffic tests."""
