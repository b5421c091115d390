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

# in_remission (CLINICAL.md 3, convention): "the latest completed trial ended in remission (or the
# latest PHQ-9 < 5 after a trial)". Read by the letter, either clause could hold over newer evidence
# against it (a remission, then a PHQ-9 of 24; a PHQ-9 of 3, then a failed trial). This project reads
# it as: THE LATEST EVIDENCE DECIDES REMISSION. The evidence is (a) the end of the latest completed
# trial of the current episode and (b) the latest PHQ-9 taken "after a trial", that is on or after the
# end date of a completed trial of the current episode, of any kind. Whichever is more recent decides:
# a trial that ended in remission, or a PHQ-9 < 5, is in_remission; anything else is not, and the
# other statuses of the table apply in their order (diagnosis_review is decided before all of them).
# A PHQ-9 taken while the first trial is still running is a response check (CLINICAL.md 8, week 4),
# not an outcome: with no completed trial there is no evidence of remission.
# Same day: a PHQ-9 dated on the day the latest trial ended decides (a measurement on the day a trial
# ended is the newer evidence: it is what the patient scored once the trial was over).
REMISSION_SAME_DAY_PHQ9_DECIDES = True
# Possible relapse (convention): the latest completed trial ended in remission and a PHQ-9 that is
# newer evidence (by the rule above) is at or above this (moderate, the section 4 band). The status is
# then no longer in_remission; the flag says that the patient had remitted, so a clinician reviews for
# relapse.
POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE = 10
