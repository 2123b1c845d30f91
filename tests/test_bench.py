"""The benchmark report: rates, ratios against the references, and the targets' verdicts from measured rows."""

from gan_jax import bench


def row(experiment, variant, step_s, devices=1, compute_dtype="float32", cold=True, pipeline=None):
  r = dict(experiment=experiment, variant=variant, devices=devices, lower_s=0.5, compile_s=1.0, cache_hit=True,
           flops=2e9, argument_bytes=2**20, temp_bytes=2**20, output_bytes=0, examples_per_step=64,
           step_s=[step_s, step_s * 1.1, step_s * 0.9], peak_rss_bytes=2**30, compute_dtype=compute_dtype)
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
