"""The LoRA Lab's rules: X/Y sweeps planned from typed axes (`axes`), and their contact
sheet (`contact_sheet`). Running the cells is the generation service's work."""
