"""Datasets for GAN training: Fashion-MNIST, TFDS catalog images and the 2D Gaussian-mixture benchmarks."""

from gan_jax.data.pipeline import DatasetInfo, excluded_classes, get_info, load_split, make_batches

__all__ = ["DatasetInfo", "excluded_classes", "get_info", "load_split", "make_batches"]
