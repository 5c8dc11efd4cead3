"""Training: the deep-supervision loop, optimizers, checkpoints that resume, multi-process."""
