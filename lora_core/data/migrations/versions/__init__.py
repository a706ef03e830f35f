"""One revision per schema change, oldest first (see `lora_core.data.schema`)."""
