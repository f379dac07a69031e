"""Exporters: a trained model in, a version folder out (its files and a `mercator.json`
manifest), ready for `mercator models register NAME DIR`.

    from mercator.export import export_xgboost, export_ets, export_ets_bundle, export_mlp, export_text,
        export_uplift

Each needs its training library only when called (xgboost, statsmodels, torch with
safetensors).
"""

from .ets import export_ets, export_ets_bundle
from .torch import export_mlp, export_text, layer_list
from .uplift import export_uplift
from .xgboost import export_xgboost

__all__ = ["export_ets", "export_ets_bundle", "export_mlp", "export_text", "export_uplift", "export_xgboost", "layer_list"]
