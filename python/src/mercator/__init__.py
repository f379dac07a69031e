"""Mercator's Python package: a client for the typed gRPC APIs (`Client`), the generated
`mercator.v1` stubs, exporters that turn trained models into version folders
(`mercator.export`), and the text features of the `text` model kind (`mercator.text`).

The client (and grpcio) is imported on first use, so a training environment can use the
exporters and `mercator.text` without gRPC installed.
"""

__version__ = "0.1.0"
_CLIENT = ["Classification", "Client", "Forecast", "ForecastPoint", "Intent", "PushResult", "Reason",
           "Recommendation", "Score"]
_ERRORS = ["AlreadyExists", "DeadlineExceeded", "FailedPrecondition", "InvalidArgument", "MercatorError",
           "NotFound", "PermissionDenied", "ResourceExhausted", "Unauthenticated", "Unavailable"]
_REGISTRY = ["AliasMove", "ModelSummary", "ModelVersion"]
__all__ = _CLIENT + _ERRORS + _REGISTRY


def __getattr__(name):
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    if name in _REGISTRY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'mercator' has no attribute '{name}'")
