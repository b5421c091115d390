"""Choices this project makes where the literature leaves room (CLINICAL.md: *convention*).
Kept in one place so a clinical lead can review and change them."""

# Adequate pharmacological trial (CLINICAL.md 1; NICE NG222 1.9.1; Cochrane TRD reviews).
MIN_TRIAL_DAYS = 28
MIN_ADHERENCE_PCT = 80  # convention: the literature gives no number

# Psychotherapy: at least 8 sessions or 6 weeks (convention). ECT: at least 6 sessions.
MIN_PSYCHOTHERAPY_SESSIONS = 8
MIN_PSYCHOTHERAPY_DAYS = 42
MIN_ECT_SESSIONS = 6

# chronic_resistant: TRD, episode longer than 12 months, a failed adequate augmentation
# (European staging's CRD, simplified: convention).
CHRONIC_MONTHS = 12

# Severity from the episode's first PHQ-9 when the clinician gave none (convention).
PHQ9_SEVERITY_BANDS = ((0, 4, "subsyndromal"), (5, 9, "mild"), (10, 19, "moderate"), (20, 27, "severe"))

# Remission thresholds and response (CLINICAL.md 1).
REMISSION_BELOW_OR_AT = {"PHQ-9": 4, "MADRS": 10, "HAM-D-17": 7}
RESPONSE_REDUCTION = 0.50
PARTIAL_RESPONSE_REDUCTION = 0.25

# Urgency carried over: an assessment lowers a suicidality finding only if it assessed
# suicidality itself (PHQ-9 item 9, or a clinician's suicide-risk rating): a MADRS total
# alone says nothing about it (convention, CLINICAL.md 5: "only a newer assessment can lower it").
