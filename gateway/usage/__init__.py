"""Usage metering: one record per request on the account API, written in batches."""
