"""Figures: sample grids, loss curves and ipywidgets explorers."""
