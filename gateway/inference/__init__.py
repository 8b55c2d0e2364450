"""The run pipeline both APIs share: the catalog and tokenizers, admission, the run, its events."""
