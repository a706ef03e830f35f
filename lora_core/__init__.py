"""LoRA Studio's logic: settings, tables, quota, generation. Knows nothing of Streamlit."""
