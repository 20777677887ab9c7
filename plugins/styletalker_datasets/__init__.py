"""Built-in plugin: the sharded clip dataset."""
