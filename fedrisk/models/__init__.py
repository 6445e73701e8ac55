"""numpy models: logistic regression (mini-batch SGD, L2, FedProx) and its gradients."""

__all__ = ["logistic"]
