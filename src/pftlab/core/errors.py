"""The one exception type for mistakes a user can fix (bad config, infeasible request).

The CLI prints its message as one line and exits with code 2; everything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """A problem with the user's input: the message says what is wrong and what is allowed."""


class CorruptFile(UserError):
    """A file fails its format or checksum check: callers rebuild a cache, and refuse an input with the message."""


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped, so a message echoing input stays one line."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text)
