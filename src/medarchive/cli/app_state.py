"""Process-wide CLI state, set by the global options."""

from __future__ import annotations

from pathlib import Path

data_dir_option: Path | None = None
