"""Accounts: the tenants of the gateway."""
