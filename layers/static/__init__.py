"""Zoning's own browser assets (the audit map's script and style), shipped as package data."""
