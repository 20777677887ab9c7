"""Data: the sharded clip format, media I/O, preprocessing and the synthetic domain."""
