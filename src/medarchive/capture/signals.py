"""Signals other parts of capture listen to (duties count received records, notifications)."""

from django.dispatch import Signal

# Sent inside the record's transaction whenever its intake moves: step is one of
# received, returned, resubmitted, accepted, withdrawn. Arguments: intake, step.
intake_changed = Signal()
