"""Errors a user can cause and fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


def one_line(message: str) -> str:
    """``message`` with its lines joined, so an error is always printed on one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class StyleTalkerError(Exception):
    """A problem with the user's input: a file, a recipe, a name or an option.

    The message names the input and says what to do; the CLI prints it on one line
    and exits with status 2.
    """


class RegistryError(StyleTalkerError):
    """Duplicate or unknown component name, or a factory of the wrong kind."""


class RecipeError(StyleTalkerError):
    """A recipe that does not validate. ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{source}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(header + ": " + "; ".join(self.problems))


class CheckpointError(StyleTalkerError):
    """A checkpoint that cannot be read or does not match the components it should fill."""
