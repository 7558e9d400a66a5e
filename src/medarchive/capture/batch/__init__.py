"""Batch manifests and watched folders: translate its input and calls capture.intake."""
