"""Secrets from SSM Parameter RedisStore, read at cold start so they never sit in a template."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from smscode.settings import SettingsError

SUFFIX = "_SSM_PARAMETER"


@cache
def load_parameters() -> None:
    """Fill each `NAME` from the SSM parameter that `NAME_SSM_PARAMETER` names, once per process.

    A variable already set wins, so a local run needs no SSM. boto3 is imported only when a
    parameter name is present, so the functions-framework path never pays for it. A failure
    is not cached: the next invocation tries again.

    Raises:
        SettingsError: a parameter is missing or SSM cannot be read.
    """
    wanted = {
        value: key.removesuffix(SUFFIX)
        for key, value in os.environ.items()
        if key.endswith(SUFFIX) and value and not os.environ.get(key.removesuffix(SUFFIX))
    }
    if wanted:
        os.environ.update(_fetch(wanted))


def _fetch(wanted: dict[str, str]) -> dict[str, str]:
    import boto3

    names = sorted(wanted)
    values: dict[str, str] = {}
    try:
        ssm: Any = boto3.session.Session().client("ssm")
        for start in range(0, len(names), 10):  # GetParameters takes at most ten names
            answer = ssm.get_parameters(Names=names[start : start + 10], WithDecryption=True)
            if answer["InvalidParameters"]:
                missing = ", ".join(answer["InvalidParameters"])
                raise SettingsError(f"SSM parameter not found: {missing}")
            for parameter in answer["Parameters"]:
                values[wanted[parameter["Name"]]] = parameter["Value"]
    except SettingsError:
        raise
    except Exception as error:  # botocore: no credentials, access denied, endpoint down
        raise SettingsError(f"cannot read SSM parameters: {type(error).__name__}") from None
    return values
