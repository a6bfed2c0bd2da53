"""Domain exceptions of the link engine (one hierarchy, mapped to wire status elsewhere)."""


class QkdError(Exception):
    """Base of every link-engine error."""


class ParameterError(QkdError, ValueError):
    """A link or processing parameter is out of its physical or protocol range."""


class ProtocolError(QkdError):
    """A peer message is malformed or arrives in the wrong state."""


class AuthenticationError(ProtocolError):
    """A classical message failed its Wegman-Carter tag check."""


class UnknownAuthKey(ProtocolError):
    """A message names an authentication key this end does not hold: a repeat, a stale
    message, or a key lost to a desynchronisation. Ignored; nothing of the message is used."""


class AuthKeyExhausted(QkdError):
    """The authentication key pool cannot pay for another message."""
