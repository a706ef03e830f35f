"""Tests of lora_core.history: filters, listing, exports and analytics."""
