"""Capture: records and their files enter the archive here, validated at the door."""
