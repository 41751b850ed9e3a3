"""The one exception type whose message is safe and useful to show to a user."""


class UserError(Exception):
    """Bad input or a condition the user can fix; the message says what was wrong and what to do.

    Messages never contain stack traces or server paths: only file names the user gave.
    """


class ContextOverflowError(UserError):
    """The prompt is longer than the model reads; dropping earlier turns may make it fit."""


def shown_name(model_id: str) -> str:
    """A model as users may see it: a Hub id as is, a local folder (existing or not) by its name only."""
    from pathlib import Path

    path = Path(model_id)
    is_path = path.exists() or path.is_absolute() or model_id.startswith(".") or model_id.count("/") > 1
    return path.name if is_path else model_id


def one_line(exc: Exception, limit: int = 160) -> str:
    """An exception in one line of at most ``limit`` characters (a ``UserError`` by its message alone)."""
    text = (str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}").splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Cancelled(Exception):
    """Model work stopped early because its request was stopped (Stop, a disconnect, a model switch)."""


def load_failed(role: str, model_id: str, exc: Exception) -> UserError:
    """The error to raise when an optional model (voice, search, drawing) cannot be loaded, logged once:
    a missing checkpoint in one line, anything else with its traceback. The model's name stays a Hub id
    or a folder's name, never a server path."""
    import logging

    name = shown_name(model_id)
    logging.getLogger("mmdemo").warning("the %s model %s could not be loaded: %s", role, name, exc,
                                        exc_info=not isinstance(exc, OSError))
    text = f"{type(exc).__name__} {exc}".lower()
    if any(word in text for word in ("connect", "offline", "network", "resolve", "timed out", "timeout")):
        reason = "it is not downloaded yet and the Hugging Face Hub cannot be reached"
    elif isinstance(exc, OSError) or "notfound" in text:
        reason = "no such checkpoint here or on the Hub"
    else:
        reason = type(exc).__name__
    return UserError(f"The {role} model '{name}' is unavailable ({reason}). The rest of the demo works.")
