"""Prometheus metrics of the gateway, served at `/metrics`."""
