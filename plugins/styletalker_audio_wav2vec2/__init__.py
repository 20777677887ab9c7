"""Built-in plugin: wav2vec2 / HuBERT audio encoder."""
