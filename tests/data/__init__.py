"""Tests of lora_core.data: models, the engine and schema, Turso and its replica, clocks."""
