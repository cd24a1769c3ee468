__all__ = ["analysis", "apply", "end_model", "export", "features", "ingest", "label_model", "lf",
           "metrics"]
