"""The seminar LINE bot: a Flask app built by create_app()."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, Response, request

from linebot_app.config import Settings
from linebot_app.logs import TRACE, trace_from

if TYPE_CHECKING:  # types only: building the app imports these, importing this module does not
    from linebot_app.bot.context import Line
    from linebot_app.bot.core import ErrorHook
    from storage.store import Store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    settings: Settings | None = None, *, store: Store | None = None, line: Line | None = None,
    clock: Callable[[], dt.datetime] | None = None, on_error: ErrorHook | None = None,
) -> Flask:
    """Build the app; tests pass fakes (and an on_error that fails them), production nothing."""
    from linebot_app.bot.context import Services, system_now
    from linebot_app.bot.core import Bot, log_error
    from linebot_app.features import offers
    from linebot_app.line.client import LineClient
    from linebot_app.understanding import retrieval
    from linebot_app.web import health, tasks, webhook
    from linebot_app.wiring import build_state, build_store

    settings = settings or Settings.from_env()
    if settings.state_backend == "sqlite":
        _check_data_dir(settings)
    store = store or build_store(settings)
    line = line or LineClient(settings.channel_access_token, settings.line_api_base_url)
    state = build_state(settings)
    store.on_reload.append(retrieval.follow)  # the FAQ index follows the sheet
    services = Services(store, state, line, settings.tzinfo, clock or system_now)
    store.on_status_edit.append(  # people are told what an organizer changed by hand
        lambda before, after: offers.tell_organizer_edit(services, before, after))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["seminar_settings"] = settings
    app.extensions["seminar_bot"] = Bot(settings.channel_secret.encode("utf-8"), services,
                                        line.reply, on_error or log_error)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(health.bp)
    app.before_request(_trace)
    app.after_request(_flush_after(store))
    if settings.simulator:
        from linebot_app.simulator import init_app

        log.warning("SIMULATOR MODE: no LINE credentials are set; Messaging API calls go to "
                    "the built-in simulator at %s", settings.line_api_base_url)
        init_app(app, settings, openapi_dir=settings.simulator_settings.openapi_dir)
    return app


def _check_data_dir(settings: Settings) -> None:
    """Refuse to start on an unwritable DATA_DIR or a damaged database in it."""
    from storage.local.sqlite import LocalStorageError, check_local_files

    try:
        check_local_files(settings.data_dir)
    except LocalStorageError as err:  # gunicorn shows the traceback; say it plainly first
        for problem in err.problems:
            log.critical("refusing to start: %s", problem)
        raise


def _trace() -> None:
    TRACE.set(trace_from(request.headers.get("X-Cloud-Trace-Context"), os.urandom(16).hex()))


def _flush_after(store: Store) -> Callable[[Response], Response]:
    def after(response: Response) -> Response:
        response.call_on_close(store.flush_if_due)
        return response

    return after
