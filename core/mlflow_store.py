"""Where MLflow runs live, without Ray: the embedded default store and experiments created with our layout.

Shared by the Tune-side tracking (armillary.platform.tracking) and by jobs that need no Ray (e.g. the CLIP
evaluation job), so every writer puts runs and artifacts in the same places.
"""

from __future__ import annotations

from pathlib import Path


def default_tracking_uri(runs_root: Path) -> str:
    return f"sqlite:///{(runs_root / 'mlflow.db').resolve()}"


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_experiment(uri: str, name: str, runs_root: Path) -> str:
    """The experiment's id, created if needed."""
    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # With the embedded store, keep artifacts beside it (MLflow would otherwise write to ./mlruns).
    location = (runs_root / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another driver
        return mlflow.get_experiment_by_name(name).experiment_id
