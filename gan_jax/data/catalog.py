"""TFDS catalog image datasets (`data.name = "tfds:<name>"`) read as random-access array_record sources."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds


def prepared_builder(name: str, data_dir: str = "") -> tfds.core.DatasetBuilder:
  """Reading needs only numpy; preparing a catalog dataset needs TensorFlow, so ask for it only then."""
  builder = tfds.builder(name, data_dir=data_dir or None, file_format="array_record")
  if not builder.is_prepared():
    try:
      import tensorflow  # noqa: F401
    except ImportError:  # bad input: refused before the run starts (exit 2)
      raise ValueError(
        f"tfds:{name} is not prepared in {builder.data_dir} and preparing it needs TensorFlow: "
        f"`pip install 'gan_jax[tf]'`, or set --config.data.data_dir to where it is prepared (array_record)"
      ) from None
    builder.download_and_prepare()
  if builder.info.file_format != tfds.core.file_adapters.FileFormat.ARRAY_RECORD:
    raise ValueError(
      f"tfds:{name} in {builder.data_dir} is stored as {builder.info.file_format}; random access needs "
      f"array_record: prepare it with file_format='array_record' into another --config.data.data_dir"
    )
  features = builder.info.features
  if "image" not in features:
    raise ValueError(f"tfds:{name} has no 'image' feature (features: {sorted(features.keys())})")
  image = features["image"]
  if None in image.shape or image.np_dtype != np.uint8:
    raise ValueError(f"tfds:{name} images are {image.shape} {image.np_dtype}; expected a fixed shape of uint8")
  return builder


def num_classes(builder: tfds.core.DatasetBuilder) -> int:
  """Classes of the 'label' feature; 0 when there is none, whose batches then carry label 0."""
  features = builder.info.features
  label = features["label"] if "label" in features else None  # noqa: SIM401 (FeaturesDict has no .get)
  return label.num_classes if isinstance(label, tfds.features.ClassLabel) else 0
