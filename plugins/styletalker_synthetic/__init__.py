"""Built-in plugin: factor oracle, its training stage and ground-truth metrics of the synthetic domain."""
