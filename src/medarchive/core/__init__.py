"""Shared kernel: fonds, departments, sequences, errors, clock, text rules."""
