"""Infrastructure every service shares: settings, the server runner, errors, logs,
telemetry, metrics, PostgreSQL and Redis. Knows nothing of the LLM or of any service."""
