"""FHIR R4 on intake (issue 16): a read facade over the patient's events under `/fhir`,
JSON only (`application/fhir+json`). `resources` maps events to resources (pure);
`router` serves them with the clinic key, tenant isolation and the read audit."""
