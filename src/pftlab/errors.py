"""The one exception type for mistakes a user can fix (bad config, infeasible request).

The CLI prints its message as one line and exits with code 2; everything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """A problem with the user's input: the message says what is wrong and what is allowed."""
