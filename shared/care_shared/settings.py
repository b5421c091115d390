"""Settings from the environment: one pydantic-settings class per service, built on this."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from care_shared.topology import ACK_WAIT_SECONDS


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str = "care"
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/care.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    # PostgreSQL past loopback (docker compose, Kubernetes): the role's password from a mounted
    # secret file rather than the URL, and TLS verified (host name included) against this CA.
    database_password_file: str | None = None
    database_ssl_root_cert: str | None = None
    # The longest wait for a database lock (SQLite busy timeout, PostgreSQL lock_timeout, the
    # pool): then a request answers 503 "database busy", a consumer retries. Under ack_wait.
    database_lock_timeout_seconds: float = 5.0
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="One NATS URL, or several separated by commas (the members of a cluster)",
    )
    # Credentials on the bus (care_shared.nats_auth): this service's nkey seed file, and for
    # TLS the CA that signed the servers' certificates and this client's certificate.
    nats_nkey_file: str | None = None
    nats_user: str | None = Field(default=None, description="NATS user name (default: the service's)")
    nats_ca_file: str | None = None
    nats_cert_file: str | None = None
    nats_key_file: str | None = None
    # Replicas of each JetStream stream: 3 on a three-node cluster (deploy/, docker compose).
    nats_stream_replicas: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # HTTP edges (DESIGN.md 5b): bodies past this are a 413 before they are read whole; past
    # this many connections at once uvicorn answers 503 rather than queue without end.
    http_body_limit_bytes: int = 64 * 1024
    http_limit_concurrency: int = 200
    # Idempotency-Key answers are remembered this long, then purged (README: idempotency).
    idempotency_ttl_hours: float = 24.0

    # The outbox relay runs inside the service unless it is run as its own process.
    relay_enabled: bool = True
    relay_batch_size: int = 256
    relay_poll_seconds: float = 1.0  # safety net only: a commit wakes the relay at once

    # Consumers: deterministic failures are redelivered with backoff, then dead-lettered;
    # transient ones (care_shared.transient) are retried with capped backoff for as long as
    # they last and never count. ack_wait must match the durables ops created (topology).
    consumer_max_deliver: int = 5
    consumer_ack_wait_seconds: float = ACK_WAIT_SECONDS
    consumer_backoff_seconds: list[float] = [0.5, 2.0, 5.0, 15.0]
    consumer_transient_first_seconds: float = 1.0
    consumer_transient_cap_seconds: float = 30.0
    consumer_fetch_batch: int = 16

    # Telemetry: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; a JSON-lines span file for
    # operators (and tests) when CARE_TRACE_FILE is set.
    otel_exporter_otlp_endpoint: str | None = None
    care_trace_file: str | None = None
    log_level: str = "INFO"

    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]

    @property
    def nats_user_name(self) -> str:
        return self.nats_user or self.service_name
