"""Worlds (procedural data with exact ground truth) and loaders for the papers' real datasets."""
