"""Running several LoRA Studio replicas behind nginx: see README "Run several replicas"."""
