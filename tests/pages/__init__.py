"""Tests of app_pages/ as AppTest renders them, one module per page."""
