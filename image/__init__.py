"""Image synthesizer: SPADE and SEAN, end-to-end fine-tuning, the synthesis chain (issues 5 and 6)."""
