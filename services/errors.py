"""What a service says went wrong. Services know no HTTP: `handlers/base.py` decides which
status each kind of failure is answered with."""


class ServiceError(Exception):
    """Something the caller should hear about; the message is shown to them."""


class NotFound(ServiceError):
    """No such data (a file never synced, an unknown list)."""


class InvalidRequest(ServiceError):
    """The question cannot be answered as asked (a bad parameter)."""


class NotReady(ServiceError):
    """Nothing to serve yet (no data synced, store still loading)."""


class Conflict(ServiceError):
    """The request clashes with work in progress (a sync already running)."""


class BrokenData(ServiceError):
    """A data file exists but cannot be parsed; only its own route fails."""
