"""Tests of lora_core.generation: generate, the quota, recovery, bad input."""
