"""Adapters of the analytics service: the Redis cache (bootstrap picks it when REDIS_URL is set)."""
