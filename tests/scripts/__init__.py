"""Tests of the scripts under scripts/ that are not exercised elsewhere."""
