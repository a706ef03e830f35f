"""training_."""
