from gan_jax.cli import entry

entry()
