"""FHIR R4 facade (read and search of Patient, Practitioner, Organization): see docs/domains/fhir.md."""
