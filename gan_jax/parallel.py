"""Data parallelism with pmap semantics, written as `jax.shard_map` over a (members, data) device mesh.

The batch is split over the `data` axis; the step body sees its local shard and averages
gradients with `lax.pmean`. Randomness is drawn per *global* example index, so a run's math
does not depend on how many devices (or hosts) execute it. A population's members may be split over
the `members` axis: each device then trains its own members with no collectives between them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"
MEMBERS = "members"
# The state and metrics are [members, ...], split over the members axis and replicated over data.
MEMBER_SPLIT = P(MEMBERS)
# Step batches are [members, d_steps, B, ...]: members over the members axis, examples over data.
STEP_BATCH = P(MEMBERS, None, AXIS)


def maybe_initialize_distributed() -> None:
  """Joins a multi-host job when `GAN_JAX_DISTRIBUTED=1` is set, and only then: a process started without it
  trains alone, even inside a SLURM allocation.

  With JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID set, those are
  used; without them `jax.distributed.initialize()` reads the cluster it detects (TPU pods, SLURM, Open MPI).
  """
  if os.environ.get("GAN_JAX_DISTRIBUTED", "0") in ("", "0"):
    return
  names = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
  given = {name: os.environ.get(name, "") for name in names}
  kwargs = {}
  if any(given.values()):
    missing = [name for name, value in given.items() if not value]
    if missing:
      raise ValueError(f"GAN_JAX_DISTRIBUTED=1 with {', '.join(missing)} unset; expected all of {', '.join(names)}")
    try:
      kwargs = {
        "coordinator_address": given["JAX_COORDINATOR_ADDRESS"],
        "num_processes": int(given["JAX_NUM_PROCESSES"]),
        "process_id": int(given["JAX_PROCESS_ID"]),
      }
    except ValueError:
      raise ValueError(
        f"JAX_NUM_PROCESSES={given['JAX_NUM_PROCESSES']!r}, JAX_PROCESS_ID={given['JAX_PROCESS_ID']!r}: "
        "expected integers"
      ) from None
    if not 0 <= kwargs["process_id"] < kwargs["num_processes"]:
      raise ValueError(
        f"JAX_PROCESS_ID={kwargs['process_id']}: expected 0..{kwargs['num_processes'] - 1} (JAX_NUM_PROCESSES)"
      )
  if jax.config.jax_platforms in (None, "", "cpu") and not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
    # Collectives across CPU processes need an implementation; gloo ships with jaxlib.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)
  print(f"process {jax.process_index()} of {jax.process_count()}", file=sys.stderr)


# How long a process waits for the others at a barrier: a peer on a loaded machine may compile for minutes.
BARRIER_TIMEOUT_S = 3600
_barriers: dict[str, int] = {}


def sync(name: str) -> None:
  """Waits for every process at the point named `name` (a no-op in a one-process run).

  The barrier is the coordination service's, not a collective: gloo gives up on a peer after 30 s.
  """
  if jax.process_count() == 1:
    return
  from jax._src import distributed  # the client jax.distributed.initialize made; no public accessor

  _barriers[name] = _barriers.get(name, 0) + 1  # every process passes the same barriers in the same order
  distributed.global_state.client.wait_at_barrier(f"{name}.{_barriers[name]}", BARRIER_TIMEOUT_S * 1000)


def compiled_together(name: str, jitted: Callable, args: Callable[[], tuple]) -> Callable:
  """`jitted` compiled for `args()`, returned once every process has compiled it (`jitted` itself in one process).

  One process may load a program from the compilation cache while another compiles it for a minute; the first
  would wait in the program's first collective, which gloo abandons after 30 s.
  """
  if jax.process_count() == 1:
    return jitted
  compiled = jitted.lower(*args()).compile()
  sync(name)
  return compiled


def max_over_processes(value: int) -> int:
  """The largest of each process's `value`: how processes agree on one decision."""
  if jax.process_count() == 1:
    return value
  return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def make_mesh(num_devices: int = 0, population: int = 1, member_devices: int = 0) -> jax.sharding.Mesh:
  """A (members, data) mesh over `num_devices` local devices per process (0 = all of them).

  `member_devices` devices split the population's members (0: as many as divide both the population and
  the devices, in one process; 1 on multi-host runs); each member's batch is split over the rest.
  """
  local = jax.local_device_count()
  if num_devices < 0 or num_devices > local:
    raise ValueError(f"train.num_devices={num_devices}: expected 0 (all) or 1..{local} local devices")
  if num_devices and jax.process_count() > 1 and num_devices != local:
    raise ValueError(f"train.num_devices={num_devices}: multi-host runs use all {local} local devices")
  n = (num_devices or local) * jax.process_count()
  # Multi-host runs take every device (num_devices is then all local ones, checked above).
  devices = jax.devices() if not num_devices or jax.process_count() > 1 else jax.local_devices()[:num_devices]
  split = member_devices or (math.gcd(population, n) if jax.process_count() == 1 else 1)
  if member_devices < 0 or population % split or n % split:
    raise ValueError(
      f"train.member_devices={member_devices}: expected 0 (auto) or a divisor of both population={population} "
      f"and the {n} devices"
    )
  if split > 1 and jax.process_count() > 1:
    raise ValueError(
      f"train.member_devices={member_devices}: members split over one process's devices only; expected 0 or 1"
    )
  # Auto axes: code outside the step indexes members (state.step[0], one member's params) without naming shardings.
  auto = (jax.sharding.AxisType.Auto,) * 2
  return jax.make_mesh((split, n // split), (MEMBERS, AXIS), devices=devices[:n], axis_types=auto)


def check_divisible(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  n = mesh.shape[AXIS]
  if global_batch % n:
    raise ValueError(
      f"train.batch_size={global_batch} is not divisible by the {n} devices of the mesh's data axis; "
      f"expected a multiple of {n} (or set train.num_devices or train.member_devices)"
    )


def member_split(mesh: jax.sharding.Mesh) -> NamedSharding:
  """The sharding of the stacked state: members over the members axis, replicated over data."""
  return NamedSharding(mesh, MEMBER_SPLIT)


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
  """jit(shard_map(step_fn)) with the state split by member, the batch by member and example, the state donated.

  `compiler_options`: XLA debug options for this program alone (e.g. train.xla_cpu.compiler_options()).
  """
  sharded = jax.shard_map(
    step_fn,
    mesh=mesh,
    in_specs=(MEMBER_SPLIT, STEP_BATCH),
    out_specs=(MEMBER_SPLIT, MEMBER_SPLIT),
    check_vma=False,  # pmap semantics: replicated values are kept in sync by explicit pmeans.
  )
  return jax.jit(sharded, donate_argnums=0, compiler_options=compiler_options or None)


def put_batch(batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh) -> Any:
  """This process's part of the global batch -> global arrays sharded over the mesh."""
  sharding = NamedSharding(mesh, STEP_BATCH)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), batch)
