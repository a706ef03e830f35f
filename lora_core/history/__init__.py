"""history_."""
