"""What every TRD Care Network service shares: the event store, the outbox relay, the
consumer machinery (inbox, dead letters), the CloudEvents envelope, telemetry, settings,
clinic API-key auth and problem+json errors."""
