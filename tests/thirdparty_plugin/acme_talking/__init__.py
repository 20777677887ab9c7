"""ACME's StyleTalker components: a linear generator and an Elman prior backbone."""
