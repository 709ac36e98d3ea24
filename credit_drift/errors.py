"""The base class of errors meant for users: the CLI prints them without a traceback."""


class CreditDriftError(Exception):
    """A failure caused by input or configuration; the message names what is wrong."""
