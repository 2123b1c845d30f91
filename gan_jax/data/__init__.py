"""Datasets for GAN training: Fashion-MNIST, TFDS catalog images, image folders, npz arrays and the 2D mixtures."""

from gan_jax.data.pipeline import (
  DatasetInfo,
  excluded_classes,
  get_info,
  info_from_json,
  info_to_json,
  load_split,
  make_batches,
  split_size,
)

__all__ = [
  "DatasetInfo",
  "excluded_classes",
  "get_info",
  "info_from_json",
  "info_to_json",
  "load_split",
  "make_batches",
  "split_size",
]
