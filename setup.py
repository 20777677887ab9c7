"""Which packages the distribution holds; everything else is configured in pyproject.toml.

Besides the code (``styletalker_core`` and the built-in plugins under ``plugins/``), the shipped
files (``checkpoints/*.safetensors``, ``recipes/*.toml``, ``assets/``) install as the package data
of ``styletalker_shipped``: a data-only package whose folder is the project folder itself, so the
files stay where the repository keeps them and an installed wheel finds them with
importlib.resources (:mod:`styletalker_core.paths`). pyproject.toml cannot express this mapping
next to automatic package discovery, hence this file.
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

CORE = find_namespace_packages(".", include=["styletalker_core", "styletalker_core.*"])
PLUGINS = find_namespace_packages("plugins", include=["styletalker_*"])



class BuildPy(build_py):
    """styletalker_shipped holds data only: the project folder's own .py files (this one) are not its modules."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        return [] if package == "styletalker_shipped" else super().find_package_modules(package, package_dir)


setup(
    cmdclass={"build_py": BuildPy},
    packages=[*CORE, *PLUGINS, "styletalker_shipped"],
    package_dir={"styletalker_shipped": ".", **{name: "plugins/" + name.replace(".", "/") for name in PLUGINS}},
)
