"""Experiments that check the course itself (e.g. that a world is learnable at laptop scale)."""
