"""Segmenters trained on real and synthetic (layout, image) pairs, and their mIoU."""
