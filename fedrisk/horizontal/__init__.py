"""Horizontal federation: banks with the same columns and different customers.

- :mod:`.job`: what the banks hold and what the aggregator may know;
- :mod:`.setup`: the banks' job from prepared data (DP plan, Paillier layout);
- :mod:`.keys`: the banks' Paillier key ceremony (light: runs before Flower loads);
- :mod:`.training`: a bank's local step (SGD, DP-SGD, clipping for client DP);
- :mod:`.fedavg`: FedAvg over the banks that answered, the base every mode wraps;
- :mod:`.client_dp`: client-level DP-FedAvg (sampled banks, noise on the sum);
- :mod:`.aggregation`: one module per aggregation mode behind a small registry;
- :mod:`.apps`: the banks' ClientApp and the aggregator's ServerApp for a scenario.

The package imports nothing itself, so the light modules stay light.
"""

__all__ = ["aggregation", "apps", "client_dp", "fedavg", "job", "keys", "setup", "training"]
