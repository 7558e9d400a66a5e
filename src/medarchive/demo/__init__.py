"""Synthetic demo content for a Chinese hospital archive (no Django dependency)."""
