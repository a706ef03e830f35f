"""Tests of lora_core.fal through the real fal_client against the fake fal (and the fake itself)."""
