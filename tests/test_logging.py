from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator
from logging.handlers import QueueHandler, QueueListener
from queue import Queue
from typing import Any

import pytest
import structlog

from ops_session import session
from ops_session.logging import (
    SessionLogFilter,
    add_session,
    install_record_factory,
    uninstall_record_factory,
)


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
    fields = vars(record)
    assert (fields["session_id"], fields["session_attributes"]) == ("", "")


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


def make_record(name: str = "app", **extra: Any) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(
        name, logging.INFO, __file__, 1, "hi", (), None, extra=extra
    )


def test_filter_keeps_fields_the_record_already_has() -> None:
    log_filter = SessionLogFilter()
    with session(id="mine-1"):
        record = make_record(session_id="given-1")
        log_filter.filter(record)
    assert vars(record)["session_id"] == "given-1"
    assert vars(record)["session_attributes"] == "-"


def test_queue_pipeline_logs_the_session_of_the_code_that_logged() -> None:
    queue: Queue[logging.LogRecord] = Queue()
    stream = io.StringIO()
    written = logging.StreamHandler(stream)
    written.setFormatter(logging.Formatter("%(session_id)s %(message)s"))
    written.addFilter(SessionLogFilter())  # runs on the listener's thread, outside the session
    queued = QueueHandler(queue)
    queued.addFilter(SessionLogFilter())  # runs where the log call runs
    listener = QueueListener(queue, written)
    logger = logging.getLogger("tests.queued")
    logger.addHandler(queued)
    logger.setLevel(logging.INFO)
    listener.start()
    try:
        with session(id="queued-1"):
            logger.info("inside")
        logger.info("outside")
    finally:
        listener.stop()
        logger.removeHandler(queued)
    assert stream.getvalue().splitlines() == ["queued-1 inside", "- outside"]


@pytest.fixture
def record_factory() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    yield
    uninstall_record_factory()
    assert logging.getLogRecordFactory() is before


def test_record_factory_stamps_records_of_every_logger(record_factory: None) -> None:
    install_record_factory(default="none")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(session_id)s %(session_attributes)s %(name)s"))
    parent = logging.getLogger("tests.factory")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        with session(id="factory-1", attributes={"a": 1}):
            logging.getLogger("tests.factory.child").info("child")
        parent.info("outside")
        install_record_factory(default="-")  # again: only the default changes
        parent.info("outside again")
    finally:
        parent.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        'factory-1 {"a":1} tests.factory.child',
        "none none tests.factory",
        "- - tests.factory",
    ]


def test_record_factory_keeps_the_factory_it_wraps(record_factory: None) -> None:
    before = logging.getLogRecordFactory()

    def tagging(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = before(*args, **kwargs)
        vars(record)["tag"] = "kept"
        return record

    logging.setLogRecordFactory(tagging)
    try:
        install_record_factory()
        with session(id="wrapped-1"):
            record = make_record()
        assert (vars(record)["tag"], vars(record)["session_id"]) == ("kept", "wrapped-1")
        uninstall_record_factory()
        assert logging.getLogRecordFactory() is tagging
        uninstall_record_factory()  # nothing installed: nothing to do
    finally:
        logging.setLogRecordFactory(before)


def test_uninstalling_under_another_factory_says_what_to_do(record_factory: None) -> None:
    install_record_factory()
    ours = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: ours(*args, **kwargs))
    with pytest.raises(RuntimeError, match="uninstall it first"):
        uninstall_record_factory()
    logging.setLogRecordFactory(ours)


def test_installing_again_after_a_library_restored_its_factory_stamps_again(
    record_factory: None,
) -> None:
    saved = logging.getLogRecordFactory()  # a library saves the factory it will wrap ...
    install_record_factory()
    logging.setLogRecordFactory(saved)  # ... and restores it on uninstrument, dropping ours
    assert "session_id" not in vars(make_record())
    install_record_factory()  # puts the stamping back rather than doing nothing
    with session(id="back-1"):
        assert vars(make_record())["session_id"] == "back-1"
    uninstall_record_factory()
    assert logging.getLogRecordFactory() is saved
