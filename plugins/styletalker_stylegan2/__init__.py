"""Built-in plugin: StyleGAN2 generator and discriminator, and importers of NVlabs and rosinality checkpoints."""
