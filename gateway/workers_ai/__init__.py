"""Workers AI's API: `/client/v4/accounts/{account_id}/ai/run/{model}` and `…/ai/models/search`."""
