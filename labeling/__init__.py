__all__ = ["analysis", "apply", "end_model", "export", "features", "ingest", "label_model", "label_studio", "lf",
           "metrics"]
