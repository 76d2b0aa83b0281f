"""Semantic-palette data: label spaces, dataset readers, toy dataset generators, the prepared-split format."""
