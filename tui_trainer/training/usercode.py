"""A user's `package.module:callable` (data.dataset, model.name): imported and called with every failure named.

Importing it runs its module's code, as running a Python script would: a preset that names a callable is
code, and is trusted like code. Whatever the callable does wrong (fails to import, raises, even
`SystemExit`, or returns the wrong thing) becomes one UserCodeError naming the preset key, the callable and
the error, which the run records as its reason for failing.
"""

from __future__ import annotations

import importlib


class UserCodeError(Exception):
    """A user's callable could not be imported, raised, or returned something unusable."""


def call_user(key: str, path: str, *args):
    """Import `path` ("package.module:callable") and call it with `args`; wrap every failure."""
    module_name, _, attr = path.partition(":")
    where = f'{key} = "{path}"'
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # noqa: BLE001 - a module that calls sys.exit() at import is still user code
        raise UserCodeError(f"{where}: cannot import {module_name}: {_error(exc)}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise UserCodeError(f"{where}: module {module_name} has no {attr}")
    if not callable(factory):
        raise UserCodeError(f"{where}: {attr} is a {type(factory).__name__}, not a callable")
    try:
        return factory(*args)
    except BaseException as exc:  # noqa: BLE001
        raise UserCodeError(f"{where} raised {_error(exc)}") from exc


def wrong_result(key: str, path: str, why: str) -> UserCodeError:
    """The error for a callable that returned something of the wrong kind or shape."""
    return UserCodeError(f'{key} = "{path}" returned {why}')


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
