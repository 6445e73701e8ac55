"""fedrisk: privacy-preserving federated credit-risk modelling, simulated through Flower."""

__version__ = "0.1.0"
