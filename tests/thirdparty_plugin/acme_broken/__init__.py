"""A plugin with a deliberate defect, for the test that the contracts catch it."""
