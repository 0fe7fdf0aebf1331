"""FHIR R4 resources of this app: the schedule (`scheduling`) and treatment sessions (`clinical`)."""
