"""The one exception type whose message is safe and useful to show to a user."""


class UserError(Exception):
    """Bad input or a condition the user can fix; the message says what was wrong and what to do.

    Messages never contain stack traces or server paths: only file names the user gave.
    """
