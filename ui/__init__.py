"""Streamlit glue shared by the pages: cached resources, identity, widgets, error messages."""
