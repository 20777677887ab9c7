"""Built-in plugin: StyleGAN3 (configs T and R) generator."""
