"""OpenAI's API (chat completions, completions, models) over the same run pipeline as Workers
AI's: under `/client/v4/accounts/{account_id}/ai/v1`, and under `/v1` for the token's account."""
