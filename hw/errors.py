"""The one exception type users see: a single line naming what is wrong and how to fix it."""

from __future__ import annotations


class A2QFlowError(Exception):
    """A user-facing error. The CLI prints `error: <message>` and exits 2, never a traceback.

    Messages name the file, layer or field at fault and, where there is one, the fix or the allowed values.
    """
