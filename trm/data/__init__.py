"""Datasets: the on-disk format, one builder per task, augmentation and the batch sampler."""
