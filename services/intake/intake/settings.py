from care_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    database_url: str = "sqlite+aiosqlite:///var/intake.db"
    http_port: int = 8001
