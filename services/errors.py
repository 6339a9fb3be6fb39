"""Errors a service raises for the handler layer to turn into a status (services know no HTTP)."""


class ServiceError(Exception):
    """Base: `status` is the HTTP status the base handler answers with; the message is shown."""

    status = 500


class NotFound(ServiceError):
    status = 404


class InvalidRequest(ServiceError):
    status = 400


class NotReady(ServiceError):
    """Nothing to serve yet (no data synced, store still loading)."""

    status = 503


class Conflict(ServiceError):
    status = 409


class BrokenData(ServiceError):
    """A data file exists but cannot be parsed; only its own route fails."""

    status = 500
