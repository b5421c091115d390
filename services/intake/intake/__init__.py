"""intake: partner clinics record patients, episodes, treatment trials and assessments."""
