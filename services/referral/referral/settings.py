from care_shared.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    service_name: str = "referral"
    database_url: str = "sqlite+aiosqlite:///var/referral.db"
    http_port: int = 8003
