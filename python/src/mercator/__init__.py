"""Mercator's Python package: a client for the typed gRPC APIs (`Client`), the generated
`mercator.v1` stubs, exporters that turn trained models into version folders
(`mercator.export`), and the text features of the `text` model kind (`mercator.text`).

The client (and grpcio) is imported on first use, so a training environment can use the
exporters and `mercator.text` without gRPC installed.
"""

__version__ = "0.1.0"
__all__ = ["Classification", "Client", "Forecast", "ForecastPoint", "Intent", "MercatorError", "PushResult",
           "Reason", "Recommendation", "Score"]


def __getattr__(name):
    if name in __all__:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'mercator' has no attribute '{name}'")
