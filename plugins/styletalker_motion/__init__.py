"""Built-in plugin: lip mapper, conditional sequential motion VAE, autoregressive prior and the StyleTalker training stages."""
