"""Layout synthesizer: the progressive palette-conditioned GAN (generator, critic, losses, training) and the completor that regenerates a masked part of a layout."""
