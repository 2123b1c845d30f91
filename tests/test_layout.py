"""The package's shape: imports run one way through its layers, the step fits a screen, --help imports no JAX."""

import ast
import pathlib
import subprocess
import sys

import gan_jax

PACKAGE = pathlib.Path(gan_jax.__file__).parent
# Bottom to top, as gan_jax/__init__.py lists them: a module imports from its own layer or one listed before it.
LAYERS = ("core", "data", "models", "eval", "train", "apps", "sweep", "cli")


def layer_of(module: str) -> str:
  """gan_jax.X.Y -> X when X is a folder; the top-level modules (gan_jax.X) are the core, but for the
  `python -m gan_jax` entry point, which is the CLI's."""
  if module == "gan_jax.__main__":
    return "cli"
  parts = module.split(".")
  return parts[1] if len(parts) > 2 or (PACKAGE / parts[1]).is_dir() else "core"


def imports_of(path: pathlib.Path) -> set[str]:
  """Every gan_jax module `path` imports, lazy imports inside functions included."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("gan_jax."))
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gan_jax":
      # `from gan_jax.pkg import name`: name may be a module of pkg, which is then what is imported.
      for alias in node.names:
        candidate = f"{node.module}.{alias.name}"
        is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
          PACKAGE.parent / candidate.replace(".", "/")
        ).is_dir()
        found.add(candidate if is_module else node.module)
  return {m for m in found if m != "gan_jax"}


def test_imports_never_run_up_the_layers():
  upward = []
  for path in sorted(PACKAGE.rglob("*.py")):
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    if module == "gan_jax":
      continue
    mine = LAYERS.index(layer_of(module))
    upward += [f"{module} -> {m}" for m in sorted(imports_of(path)) if LAYERS.index(layer_of(m)) > mine]
  assert not upward, upward
  assert layer_of("gan_jax.train.step") == "train" and layer_of("gan_jax.losses") == "core"
  assert layer_of("gan_jax.data") == "data"


def test_member_step_fits_one_screen():
  """make_member_step: the D update and the member's step, docstrings included."""
  source = (PACKAGE / "train" / "step.py").read_text()
  (make,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "make_member_step"]
  assert make.end_lineno - make.lineno + 1 <= 60


def test_help_answers_without_importing_jax():
  probe = "import sys; from gan_jax.cli import parser; parser.build_parser(); print('jax' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
  assert out.strip() == "False"
  help_text = subprocess.run([sys.executable, "-m", "gan_jax", "--help"], capture_output=True, text=True, check=True)
  assert "train" in help_text.stdout and "sweep" in help_text.stdout
