"""Per-account rate limits, concurrency and monthly token quotas."""
