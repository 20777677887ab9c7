"""Built-in training loggers: JSON lines (always) and TensorBoard (when installed)."""
