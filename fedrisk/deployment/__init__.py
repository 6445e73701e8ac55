"""Flower's Deployment Engine: real SuperLink and SuperNode processes.

- :mod:`.processes`: a local federation on 127.0.0.1 (TLS, SuperNode keys), ``flwr run``;
- :mod:`.apps`: the module-level ServerApp and ClientApp ``flwr run`` loads;
- :mod:`.bank_files`: each SuperNode's own rows and, for Paillier, the banks' key;
- :mod:`.launch`: start or reach a federation, submit the run, collect its log;
- :mod:`.result`: the ServerApp's result as one log line;
- :mod:`.options`: ``--superlink``, ``--root-certificates``, ``--insecure``, ``--bank-files``.
"""

__all__ = ["apps", "bank_files", "launch", "options", "processes", "result", "supernode"]
