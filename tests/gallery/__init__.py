"""Tests of lora_core.gallery: the read side, favorites, downloads, moderation."""
