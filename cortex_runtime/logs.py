"""structlog set-up for the command line. Libraries embedding Cortex configure structlog themselves."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, verbose: bool, json: bool = False) -> None:
    """Send the runtime's structured log to stderr: everything with ``verbose``, else warnings."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
