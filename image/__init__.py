"""Image synthesizer: SPADE and SEAN generators, their critics and losses, end-to-end fine-tuning, and the palette -> layout -> image synthesis chain."""
