"""The ``zoning`` command: the group and its error handling (:mod:`cli.app`) with every command registered
(:mod:`cli.commands`, :mod:`cli.compensate`, :mod:`cli.qgis`)."""
from __future__ import annotations

from layers.files import install_signal_handlers

from . import commands, compensate, qgis  # noqa: F401 - registers the commands on the group
from .app import cli, handle_errors

__all__ = ["cli", "handle_errors", "main"]


def main() -> None:
    install_signal_handlers()
    cli(prog_name="zoning")
