"""pathway: each patient's TRD status, staging and recommended next strategies."""
