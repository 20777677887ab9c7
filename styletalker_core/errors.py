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


class OptionValueError(ValueError):
    """Raised by a component's constructor about one of its options, e.g.
    ``OptionValueError("steps", 0, "must be at least 1")``.

    It is a ValueError for code that builds the class directly; built through the registries it is
    reported at the option's recipe path (``model.prior.flow.steps = 0: must be at least 1``).
    """

    def __init__(self, option: str, value: object, message: str) -> None:
        self.option, self.value, self.message = option, value, message
        super().__init__(f"{option} = {value!r}: {message}")


class ComponentError(RegistryError, ValueError):
    """A component's constructor refused the options it was given: its ValueError or TypeError,
    wrapped by ``Registry.build`` (still a ValueError for code that catches one).

    ``component`` names it (``flow 'spline' from <package>``); ``path`` is where the recipe holds it,
    once the builder knows (``model.prior.flow``); ``option`` and ``value`` name the option when the
    constructor said which one (:class:`OptionValueError`); ``detail`` says what is wrong.
    """

    def __init__(self, component: str, detail: str, option: str | None = None, value: object = None,
                 path: str | None = None) -> None:
        self.component, self.detail, self.option, self.value, self.path = component, detail, option, value, path
        super().__init__(self._message())

    def _message(self) -> str:
        if self.option is not None:
            where = f"{self.path}.{self.option}" if self.path else f"{self.component}: option {self.option}"
            return f"{where} = {self.value!r}: {self.detail}"
        return f"{self.path or self.component}: cannot be built: {self.detail}"

    def at(self, path: str) -> ComponentError:
        """The same error, reported at recipe path ``path``."""
        return ComponentError(self.component, self.detail, self.option, self.value, path)


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
