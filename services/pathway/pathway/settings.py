from care_shared.settings import ServiceSettings


class PathwaySettings(ServiceSettings):
    service_name: str = "pathway"
    database_url: str = "sqlite+aiosqlite:///var/pathway.db"
    http_port: int = 8002
