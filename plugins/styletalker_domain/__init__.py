"""Built-in plugin: domain pretraining stages (StyleGAN training, encoder training, joint autoencoding)."""
