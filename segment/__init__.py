"""Segmenter training with real and synthetic data, and mIoU (issue 7)."""
