"""The queue entry points' shared door: the intake with this process's configured deliverer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from smscode.domain.outcomes import Outcome
from smscode.service_layer.intake import Deliver, receive
from smscode.settings import SettingsError

log = logging.getLogger("smscode.intake")


def deliver_all(payloads: Sequence[str | bytes], deliver: Deliver | None = None) -> list[Outcome]:
    """`service_layer.intake.receive` with the configured deliverer (SSM read on Lambda).

    Misconfigured, every payload is RETRY (back to the queue), with one clear log line.
    """
    if deliver is None:
        from smscode import bootstrap
        from smscode.adapters import ssm

        try:
            ssm.load_parameters()
            deliver = bootstrap.deliverer().deliver
        except SettingsError as error:
            log.error("settings: %s", error)
            return [Outcome.RETRY] * len(payloads)
    return receive(payloads, deliver)
