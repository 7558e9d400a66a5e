"""medarchive: hospital archive management across the whole record lifecycle."""

__version__ = "0.1.0"
