"""Liveness and readiness for the orchestrator."""
