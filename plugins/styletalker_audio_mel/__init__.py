"""Built-in plugin: mel-spectrogram audio encoder."""
