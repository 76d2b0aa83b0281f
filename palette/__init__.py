"""Palettes (class proportions) of layouts, the palette GMM, sampling."""
