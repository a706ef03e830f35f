"""Tests of lora_core.cli: the demo seed and repair."""
