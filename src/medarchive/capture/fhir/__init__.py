"""FHIR R4 endpoint (/fhir/r4/): DocumentReference, Binary and transaction Bundles over the capture services."""
