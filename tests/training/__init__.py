"""Tests of lora_core.training: a training's life, registering LoRAs, durable weights."""
