"""Operating the service: JSON logs and the request log, error tracking, metrics, beat's heartbeat."""
