"""Choices this project makes where the literature leaves room (docs/CLINICAL.md: *convention*),
and the fixed numbers of the rules, each citing its section. Kept in one place so a clinical
lead can review and change them; changing any of them means a new RULES_VERSION."""

RULES_VERSION = "trd-rules 2026.12"

# --- CLINICAL 1: adequate trials ---------------------------------------------------------
# Pharmacological (antidepressant, augmentation, combination): NICE NG222 1.9.1.
MIN_TRIAL_DAYS = 28
MIN_ADHERENCE_PCT = 80  # convention: the literature gives no number
MIN_PSYCHOTHERAPY_SESSIONS = 8  # convention (sessions only; the old "or 6 weeks" is gone)
MIN_ESKETAMINE_SESSIONS = 8  # convention: the label's twice-weekly 4-week induction
MIN_ESKETAMINE_DAYS = 21  # convention: ended_on at least 21 days after started_on
MIN_KETAMINE_INFUSIONS = 6  # convention (Murrough 2013: 6 infusions over 12 days)
MIN_RTMS_SESSIONS = 20  # convention (courses run 20-30)
MIN_ECT_SESSIONS = 6  # CANMAT 2016
# vns, dbs: adequate when completed with an outcome (convention).
LITHIUM_SERUM_NOTE = "serum level (about 0.5-0.8 mmol/L) is the real criterion"
# A trial started before the episode's onset counts its duration from the onset (convention).

# --- CLINICAL 1: outcomes -------------------------------------------------------------------
REMISSION_AT_OR_BELOW = {"PHQ-9": 4, "MADRS": 10, "HAM-D-17": 7}  # PHQ-9 < 5
RESPONSE_REDUCTION = 0.50
PARTIAL_RESPONSE_REDUCTION = 0.25
OUTCOME_INSTRUMENTS = ("PHQ-9", "MADRS", "HAM-D-17")  # WSAS never enters outcome (CLINICAL 7)

# --- CLINICAL 3: status -----------------------------------------------------------------------
# chronic_resistant: episode longer than 12 months = more than 365 days from onset to the
# assessment date (convention; not Maudsley's whole months).
CHRONIC_DAYS = 365
# in_remission: several scores on the deciding date must all be in remission (convention); one
# score suffices, sustained remission is not required (convention).
# Possible relapse (this project's convention, kept from trd-rules 2026.06): the latest completed
# trial ended in remission and the newer PHQ-9 evidence is at or above this (moderate, CLINICAL 4).
POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE = 10

# --- CLINICAL 3: at risk of TRD (GSRD, Souery 2007) ---------------------------------------------
AT_RISK_OLDER_AGE = 65  # assessment-date year - birth_year >= 65 (convention)
AT_RISK_EARLY_ONSET_BELOW = 18  # age_at_first_onset < 18 (convention)
AT_RISK_RECURRENCE_AT_LEAST = 2  # prior episodes >= 2 (convention)
AT_RISK_LONG_EPISODE_DAYS = 365  # more than 365 days
AT_RISK_PSYCHIATRIC = ("eating_disorder", "sleep_disorder", "substance_use_disorder")
AT_RISK_MEDICAL = ("chronic_pain", "thyroid_disease", "other_chronic_medical_illness")
EARLY_SPECIALIST_REVIEW_FACTORS = 2  # CLINICAL 6 (convention; seed 004)

# --- CLINICAL 4: staging ----------------------------------------------------------------------
# Severity from the episode's first PHQ-9 when the clinician gave none (convention).
PHQ9_SEVERITY_BANDS = ((0, 4, "subsyndromal"), (5, 9, "mild"), (10, 19, "moderate"), (20, 27, "severe"))
# Thase-Rush V: any ECT placement counts (convention); unless bilateral the stage says so.
MGH_ECT_POINTS = 3  # once per episode (Fava 2003)

# --- CLINICAL 5: safety -----------------------------------------------------------------------
# PHQ-9 without item 9: the other eight items sum to at most 24.
PHQ9_OTHER_ITEMS_MAX = 24  # so item 9 >= total - 24, sent or not (fail closed)
PHQ9_TOTAL_FORCES_URGENT = 25  # item 9 >= 1
PHQ9_TOTAL_FORCES_EMERGENCY = 27  # item 9 = 3
# A clinician-set urgency is lowered only by a later clinician rating; a self-report can raise
# it, not lower it (convention).
STALE_RATING_DAYS = 90  # convention: reassess_suicide_risk

# --- CLINICAL 6: strategies -------------------------------------------------------------------
# Review age of a running trial, in days (convention).
REVIEW_AGE_DAYS = {
    "antidepressant": 28,
    "augmentation": 28,
    "combination": 28,
    "esketamine": 28,
    "rtms": 28,
    "ketamine": 14,
    "ect": 21,
}
# Workup: checks redone for each failure count if done on or after the latest failed trial's start;
# the others once per episode (convention).
WORKUP_PER_FAILURE = (
    "adherence_review",
    "interacting_medicines",
    "recent_stressors",
    "substance_alcohol_use",
)
WORKUP_PER_EPISODE = (
    "bipolar_screen",
    "thyroid_function",
    "vitamin_d",
    "sleep_apnoea_screen",
    "medical_illness",
)
# Mood journal: the 14 days ending at the latest entry; >= 7 entries with mean mood <= 3 raise
# journal_low_mood (convention).
JOURNAL_WINDOW_DAYS = 14
JOURNAL_LOW_MOOD_MIN_ENTRIES = 7
JOURNAL_LOW_MOOD_MEAN_AT_OR_BELOW = 3

# --- CLINICAL 7: referral ---------------------------------------------------------------------
WSAS_IMPAIRED_ABOVE = 20  # "moderately severe or worse" (Mundt 2002)

# --- Readings this project chose where trd-rules 2026.12 leaves room (not numbers) ---------------
# CLINICAL 1: a recorded shortfall (dose, duration, adherence, sessions) makes a trial not adequate
#   even when another field is unrecorded; only with no shortfall does a gap make it adequacy_unknown.
# CLINICAL 1, 6: a modality stopped for intolerance goes to `tried` and is not offered again, as an
#   agent is.
# CLINICAL 1: "revised on <date>" names the assessment date when the revision arrived (the revision
#   event carries no date of its own).
# CLINICAL 3: at risk of TRD counts the psychiatric comorbidities as one factor and the medical
#   illnesses as another (seven factors in all, as the rule lists them).
# CLINICAL 5: within ratings after the latest clinician date, self-reports follow "a later date lowers";
#   the clinician's own rating on that date is the floor. `suicide_item_not_recorded` is shown for
#   the latest PHQ-9.
# CLINICAL 6: `continue_current_trial` and `review_current_trial` add no referral capability (the
#   running course is already being given somewhere); with psychotic features a declined
#   `augmentation` or `combination` also removes the antidepressant plus antipsychotic.
