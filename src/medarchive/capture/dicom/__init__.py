"""DICOM C-STORE and file import: translates its input and calls capture.intake."""
