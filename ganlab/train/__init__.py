"""The one training loop of the course, with EMA, checkpoints, resume, AMP and DDP."""
