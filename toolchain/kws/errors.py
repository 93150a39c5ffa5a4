"""The one exception the CLI turns into a one-line error."""


class KwsError(Exception):
    """A user-facing error: the message names the input and the cause, on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
