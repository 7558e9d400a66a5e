"""HL7 v2 over MLLP: translates its input and calls capture.intake."""
