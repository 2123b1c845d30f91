"""The benchmark report: rates, ratios against the references, and the targets' verdicts from measured rows."""

import numpy as np
import pytest

from benchmarks import bench


def row(experiment, variant, step_s, devices=1, compute_dtype="float32", cold=True, pipeline=None):
  r = dict(
    experiment=experiment,
    variant=variant,
    devices=devices,
    lower_s=0.5,
    compile_s=1.0,
    cache_hit=True,
    flops=2e9,
    argument_bytes=2**20,
    temp_bytes=2**20,
    output_bytes=0,
    examples_per_step=64,
    step_s=[step_s, step_s * 1.1, step_s * 0.9],
    peak_rss_bytes=2**30,
    compute_dtype=compute_dtype,
  )
  if cold:
    r["cold"] = dict(lower_s=2.0, compile_s=10.0)
  if pipeline:
    r["pipeline_examples_per_s"] = pipeline
  return r


def test_report_rates_ratios_and_verdicts():
  rows = [
    row("dcgan28", "f32 alternating", 0.064, pipeline=64_000),  # 1000 images/s, 20 GFLOP/s
    row("dcgan28", "f32 alternating", 0.032, devices=8, cold=False),
    row("dcgan28", "bf16 alternating", 0.1, compute_dtype="bfloat16"),  # 20 GFLOP/s of a 200 ceiling
    row("mlp_gan", "f32 alternating", 0.064),  # 1000 images/s: under 2.5x PyTorch's 1500
  ]
  text = bench.report(rows, {"cpu": "test"}, {"float32": (90.0, 110.0), "bfloat16": (200.0, 200.0)}, ("1", "2"), "x")
  assert "| dcgan28 | f32 alternating | 1 | 12.0 | 1.5 | 64.0 [57.6-70.4] | 1000 | 2.00 | 31 (31%) |" in text
  assert "| dcgan28 | bf16 alternating | 1 | 12.0 | 1.5 | 100.0 [90.0-110.0] | 640 | 2.00 | 20 (10%) |" in text
  assert "| dcgan28 | f32 alternating | PyTorch 2.13 eager | 560-590 | 1000 | 1.74x |" in text
  assert "dcgan28 f32 alternating >= 1x PyTorch 2.13 eager (575 images/s): 1000, met" in text
  assert "dcgan28 f32 alternating >= 1.5x PyTorch 2.13 eager (862 images/s): 1000, met" in text
  assert "mlp_gan f32 alternating >= 2.5x PyTorch eager (3750 images/s): 1000, NOT met" in text
  assert "dcgan28 input pipeline >= 10x step consumption: 64.0x, met" in text
  assert "compile < 15 s cold, < 3 s cached: 12.0 s, 1.5 s, met" in text


def test_pytorch_rates_paired_in_the_run_replace_the_stored_ones():
  rows = [row("dcgan28", "f32 alternating", 0.064), row("mlp_gan", "f32 alternating", 0.016)]  # 1000, 4000 /s
  # Paired windows: PyTorch 0.1 s/step (640 /s) against ours at 0.08 s (800 /s); window ratios 1.25, 1.2, 1.3.
  runs = {
    "dcgan28": dict(step_s=[0.1, 0.096, 0.13], jax_step_s=[0.08, 0.08, 0.1], batch=64, torch="2.13.0+cpu", threads=2)
  }
  text = bench.report(rows, {"cpu": "test"}, {"float32": (100.0, 100.0), "bfloat16": (1.0, 1.0)}, ("1", "2"), "x", runs)
  label = "PyTorch 2.13.0+cpu eager, paired in this run (2 threads)"
  assert f"| dcgan28 | f32 alternating | {label} | 640 | 800 | 1.25x |" in text  # not the row's own 1000 /s
  assert "| dcgan28 | f32 alternating | PyTorch 2.13 eager | 560-590 | 1000 | 1.74x |" in text  # still shown
  windows = "1.25x over 3 paired windows (800 against 640 images/s)"
  assert f"dcgan28 f32 alternating >= 1x {label}: {windows}, met" in text
  assert f"dcgan28 f32 alternating >= 1.5x {label}: {windows}, NOT met" in text
  # No PyTorch run for mlp_gan: its target keeps the stored rate.
  assert "mlp_gan f32 alternating >= 2.5x PyTorch eager (3750 images/s): 4000, met" in text


def test_stored_references_are_flagged_on_another_cpu():
  assert bench.vector_isa("flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw") == "AVX-512"
  assert bench.vector_isa("flags\t\t: fpu sse4_2 avx avx2 fma sha_ni") == "AVX2"
  assert bench.vector_isa("flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile") == "AVX-512, AMX-BF16"
  rows = [row("mlp_gan", "f32 alternating", 0.016)]
  ceilings = {"float32": (100.0, 100.0), "bfloat16": (1.0, 1.0)}

  def report(cpu, isa):
    return bench.report(rows, {"cpu": f"{cpu}, 2 cores", "isa": isa}, ceilings, ("1", "2"), "x")

  same = report("AMD EPYC 9R14 96-Core Processor", "AVX-512")
  verdict = "mlp_gan f32 alternating >= 2.5x PyTorch eager (3750 images/s): 4000, met"
  assert "compare two machines" not in same and f"{verdict}\n" in same
  assert f"{verdict} (this run's CPU is AMD EPYC 7B13 with AVX2: those ratios compare two machines)" in report(
    "AMD EPYC 7B13", "AVX2"
  )
  # The same vector ISA on another maker's CPU is another machine too.
  assert "(this run's CPU is Intel(R) Xeon(R) Processor with AVX-512, AMX-BF16: those ratios" in report(
    "Intel(R) Xeon(R) Processor", "AVX-512, AMX-BF16"
  )


def test_pytorch_reference_networks_are_the_bench_experiments():
  """torch_reference's G and D hold the JAX models' parameter shapes (up to layout) and map z to 28x28 images."""
  torch = pytest.importorskip("torch")
  import jax

  from benchmarks import torch_reference
  from gan_jax import config as config_lib
  from gan_jax.data import DatasetInfo
  from gan_jax.train.state import create_gan

  info = DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10, None)
  for name, models in torch_reference.MODELS.items():
    gan = create_gan(config_lib.load(str(bench.EXPERIMENTS[name])), info)
    z = np.zeros((2, gan.latent_dim), np.float32)
    jax_shapes = []
    for module, x in ((gan.generator, z), (gan.discriminator, np.zeros((2, 28, 28, 1), np.float32))):
      params = jax.eval_shape(lambda x, m=module: m.init(jax.random.PRNGKey(0), x, train=False), x)["params"]
      jax_shapes.append(sorted(sorted(p.shape) for p in jax.tree.leaves(params)))
    generator, discriminator = models()
    torch_shapes = [sorted(sorted(p.shape) for p in m.parameters()) for m in (generator, discriminator)]
    assert torch_shapes == jax_shapes, name
    with torch.no_grad():
      images = generator.eval()(torch.zeros(2, torch_reference.LATENT))
      assert images.shape == (2, 1, 28, 28) and discriminator.eval()(images).shape == (2, 1)


def test_paired_windows_train_both_variants_alike():
  """--paired runs A and B in alternating windows from the same state and batches: with equal overrides
  the two train to the same metrics, and every window gives one ratio."""
  overrides = {"train.batch_size": 32, "model.g_width": 16, "model.d_width": 16}
  result = bench.paired(str(bench.EXPERIMENTS["ring8"]), overrides, overrides, windows=3, steps=2, warmup=1)
  assert len(result["ratios"]) == len(result["a_s"]) == len(result["b_s"]) == 3
  assert all(r > 0 for r in result["ratios"])
  a, b = result["metrics"]
  assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
  with pytest.raises(SystemExit, match="override 'train.update_order': expected KEY=VALUE"):
    bench.main(["--paired", "ring8", "--a", "train.update_order"])
