"""Data parallelism with pmap semantics, written as `jax.shard_map` over a 1-D device mesh.

The batch is split over the `data` axis; the step body sees its local shard and averages
gradients with `lax.pmean`. Randomness is drawn per *global* example index, so a run's math
does not depend on how many devices (or hosts) execute it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"
# Step batches are [members, d_steps, B, ...]: the example axis is the one split over devices.
STEP_BATCH = P(None, None, AXIS)


def maybe_initialize_distributed() -> None:
  """Joins a multi-host job when `GAN_JAX_DISTRIBUTED=1` (or a cluster env JAX detects) is set.

  On TPU pods and SLURM/Open MPI GPU clusters `jax.distributed.initialize()` reads the
  coordinator and process ids from the environment; elsewhere set JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID.
  """
  if os.environ.get("GAN_JAX_DISTRIBUTED", "0") not in ("", "0"):
    jax.distributed.initialize()
    print(f"process {jax.process_index()} of {jax.process_count()}", file=sys.stderr)


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D mesh over `num_devices` local devices per process (0 = all of them)."""
  local = jax.local_device_count()
  if num_devices < 0 or num_devices > local:
    raise ValueError(f"train.num_devices={num_devices}: expected 0 (all) or 1..{local} local devices")
  if num_devices and jax.process_count() > 1 and num_devices != local:
    raise ValueError(f"train.num_devices={num_devices}: multi-host runs use all {local} local devices")
  n = (num_devices or local) * jax.process_count()
  devices = jax.devices() if not num_devices else jax.local_devices()[:num_devices]
  return jax.make_mesh((n,), (AXIS,), devices=devices[:n])


def check_divisible(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  n = mesh.devices.size
  if global_batch % n:
    raise ValueError(
        f"train.batch_size={global_batch} is not divisible by the {n} devices of the mesh; "
        f"expected a multiple of {n} (or set train.num_devices)"
    )


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def example_ids(local_batch: int) -> jax.Array:
  """Global indices of this device's examples; call inside the sharded step."""
  return lax.axis_index(AXIS) * local_batch + jnp.arange(local_batch)


def axis_size() -> int:
  """Devices on the data axis; call inside the sharded step.

  On one device the collectives below are identities, and skipping them is exact: XLA:CPU would
  still copy every gradient through a one-participant all-reduce.
  """
  return lax.axis_size(AXIS)


def gather_batch(x_B: jax.Array) -> jax.Array:
  """The global batch of a per-example quantity, identical on every device.

  Its transpose sums cotangents over devices, so gradients taken through it come out scaled
  by the device count, which the subsequent `pmean` of parameter gradients divides away.
  """
  return lax.all_gather(x_B, AXIS, tiled=True) if axis_size() > 1 else x_B


def pmean(tree: Any) -> Any:
  return lax.pmean(tree, AXIS) if axis_size() > 1 else tree


def data_parallel(step_fn: Callable, mesh: jax.sharding.Mesh, compiler_options: dict | None = None) -> Callable:
  """jit(shard_map(step_fn)) with the state replicated, the batch split, and the state donated.

  `compiler_options`: XLA debug options for this program alone (e.g. train.step.compiler_options).
  """
  sharded = jax.shard_map(
      step_fn,
      mesh=mesh,
      in_specs=(P(), STEP_BATCH),
      out_specs=(P(), P()),
      check_vma=False,  # pmap semantics: replicated values are kept in sync by explicit pmeans.
  )
  return jax.jit(sharded, donate_argnums=0, compiler_options=compiler_options or None)


def put_batch(batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh) -> Any:
  """This process's part of the global batch -> global arrays sharded over the mesh."""
  sharding = NamedSharding(mesh, STEP_BATCH)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), batch)
