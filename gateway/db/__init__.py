"""Storage: the declarative base, the engine's lifespan and the per-request session."""
