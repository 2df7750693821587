from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest
import structlog

from ops_session import session
from ops_session.logging import SessionLogFilter, add_session


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}},
            "formatters": {
                "plain": {"format": "%(session_id)s %(session_attributes)s %(message)s"}
            },
            "handlers": {
                "memory": {
                    "class": "logging.StreamHandler",
                    "stream": stream,
                    "filters": ["session"],
                    "formatter": "plain",
                }
            },
            "loggers": {"tests.app": {"handlers": ["memory"], "level": "INFO"}},
        }
    )
    yield logging.getLogger("tests.app"), stream
    logging.getLogger("tests.app").handlers.clear()


def test_filter_from_dict_config_adds_the_session(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    log.info("starting")
    with session(id="log-1", attributes={"user": "ada", "tags": ["x"], "m": {"k": 1}}):
        log.info("inside")
    with session(id="log-2"):
        log.info("plain")
    assert stream.getvalue().splitlines() == [
        "- - starting",
        'log-1 {"user":"ada","tags":["x"],"m":{"k":1}} inside',
        "log-2 - plain",
    ]


def test_filter_default_is_configurable() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert SessionLogFilter(default="").filter(record) is True
    assert (record.session_id, record.session_attributes) == ("", "")


def test_structlog_processor() -> None:
    structlog.configure(
        processors=[add_session, structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    try:
        log = structlog.get_logger()
        assert log.info("outside") == '{"event": "outside"}'
        with session(id="sl-0"):
            assert log.info("bare") == '{"event": "bare", "session_id": "sl-0"}'
        with session(id="sl-1", attributes={"tags": ["a"], "m": {"k": 1}}):
            assert log.info("inside") == (
                '{"event": "inside", "session_id": "sl-1", '
                '"session_attributes": {"tags": ["a"], "m": {"k": 1}}}'
            )
            assert log.info("kept", session_id="own", session_attributes=None) == (
                '{"session_id": "own", "session_attributes": null, "event": "kept"}'
            )
    finally:
        structlog.reset_defaults()
