"""Test support for every service: real servers (nats-server, PostgreSQL), databases made and
dropped per run, services started as real processes, and polling with deadlines."""
