"""Contract tests: the contracts of styletalker_core.testing, each parametrized over every registered
implementation of one kind, so a plugin is tested the moment it registers."""
