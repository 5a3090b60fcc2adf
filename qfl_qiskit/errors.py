"""Errors raised for bad user input.

Every layer raises a subclass of :class:`QflError` for input the user can fix; the CLI turns it into one line on
stderr and exit code 2. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class QflError(Exception):
    """Bad input the user can fix; the message says what is wrong and what to do."""


class SpecError(QflError):
    """A spec file is missing, malformed, or has invalid values."""


class BackendError(QflError):
    """A backend name cannot be resolved or cannot run the circuit."""


class CircuitError(QflError):
    """A circuit cannot be built or exported as asked."""


class ExecutionError(QflError):
    """Circuits, observables or parameter values cannot be run as given (shapes, NaN, unsupported options)."""


class NoiseError(QflError):
    """A noise spec or noise model cannot be built as asked."""


class DataError(QflError):
    """A data set is malformed (shapes, labels, non-finite values) or cannot be loaded or split as asked."""
