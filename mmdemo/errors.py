"""The one exception type whose message is safe and useful to show to a user."""


class UserError(Exception):
    """Bad input or a condition the user can fix; the message says what was wrong and what to do.

    Messages never contain stack traces or server paths: only file names the user gave.
    """


class ContextOverflowError(UserError):
    """The prompt is longer than the model reads; dropping earlier turns may make it fit."""
