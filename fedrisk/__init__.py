"""fedrisk: privacy-preserving federated credit-risk modelling, simulated through Flower."""

__version__ = "0.1.0"


def load_model(run_dir):
    """The final model of a horizontal run folder; see :mod:`fedrisk.model_io`."""
    from fedrisk.model_io import load_model as f
    return f(run_dir)
