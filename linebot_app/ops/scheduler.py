"""The bot's own clock: every minute, event-change notices, lottery draws, offers past their
deadline, seats freed by hand given to the people waiting, due reminders and unfinished
deliveries. /tasks/remind runs the same round, so cron and the scheduler never double-send or
draw twice."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from linebot_app.bot.context import Services
from linebot_app.features import lottery, notices, offers, reminders

log = logging.getLogger(__name__)
_one_round = threading.Lock()  # rounds in one process never overlap


@dataclass(frozen=True)
class Round:
    """What one round did."""

    changes: int
    due: int
    sent: int
    draws: int = 0
    expired: int = 0
    filled: int = 0


def tick(services: Services) -> Round:
    """Read the sheet now, tell registrants of changed events, send what is due."""
    with _one_round:
        org = services.store.reload()
        regs = services.store.registrations()
        state, deliveries, changes = services.state, services.deliveries, 0
        for delivery, record in notices.changes(org.events, regs, state.event_version,
                                                state.remember_event, services.now()):
            changes += 1
            if delivery:
                deliveries.deliver(delivery)
            record()
        draws = sum(len(lottery.run(services, event))
                    for event in lottery.due(org, regs, services))
        expired = offers.expire_offers(services, regs)
        if draws or expired:
            regs = services.store.registrations()
        filled = offers.fill_free_seats(services, org, regs)
        due = list(reminders.due(org, regs, services.now()))
        deliveries.plan(due)
        sent = deliveries.work()  # in the round: on Cloud Run a cron request has the CPU
        return Round(changes, len(due), sent, draws, expired, filled)


def start(services: Services, seconds: float) -> threading.Event:
    """Run a round now and then every `seconds` in a daemon thread; set the event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                done = tick(services)
                if done.changes or done.sent or done.draws or done.expired or done.filled:
                    log.info("scheduler: %d event changes, %d draws, %d offers expired, %d freed "
                             "seats filled, %d due, %d sent", done.changes, done.draws,
                             done.expired, done.filled, done.due, done.sent)
            except Exception:  # a bad round must not end the clock; the next one retries
                log.exception("scheduler round failed")
            if stop.wait(seconds):
                return

    threading.Thread(target=loop, name="seminar-scheduler", daemon=True).start()
    return stop
