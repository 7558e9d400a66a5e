"""`python -m medarchive` is the `medarchive` command."""

from medarchive.cli import main

main()
