"""Layout synthesizer: progressive palette-conditioned GAN and the completor (issues 3 and 4)."""
