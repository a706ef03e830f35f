"""Tests of ui/: the Streamlit glue (context, literal text)."""
