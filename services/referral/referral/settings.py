from care_shared.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    service_name: str = "referral"
    database_url: str = "sqlite+aiosqlite:///var/referral.db"
    http_port: int = 8003

    claim_lease_minutes: int = 15
    # How often the service looks for tasks waiting past their urgency's limit.
    escalation_sweep_seconds: float = 30.0
