"""The ``styletalker`` command line."""
