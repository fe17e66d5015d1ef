"""The one exception type users see: a single line naming what is wrong and how to fix it."""

from __future__ import annotations


class A2QFlowError(Exception):
    """A user-facing error. The CLI prints `error: <message>` and exits 2, never a traceback.

    Messages name the file, layer or field at fault and, where there is one, the fix or the allowed values.
    """


class DeprecatedNameWarning(FutureWarning):
    """An old name a config, a command line or a stored file still uses: it keeps working, the message names the
    word that replaced it (the CLI prints it as one `warning: ...` line).

    A FutureWarning, not a DeprecationWarning: Python hides DeprecationWarning outside `__main__`, and the people
    who must see this one are the authors of config files, not of code.
    """
