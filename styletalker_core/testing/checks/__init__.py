"""Contract checks, one module per kind (or per family of kinds). Each ``check_<kind>_<what>``
function takes a :class:`~styletalker_core.testing.factory.ComponentFactory` and raises
AssertionError with a message naming the component when the implementation breaks the contract."""
