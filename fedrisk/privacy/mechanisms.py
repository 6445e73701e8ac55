"""Clipping and Gaussian noise: the building blocks of DP-SGD and DP-FedAvg.

Everything is vectorised over rows (one row = one customer's gradient, or one bank's
update). The DP-SGD step follows Abadi et al. 2016 with Poisson sampling as analysed by
the accountant: each row joins the batch independently with probability q, per-example
gradients are clipped to L2 norm C, summed, N(0, (z·C)²) noise is added to the sum, and
the result is divided by the *expected* batch size q·n (not the realised one, which
would itself depend on the data and leak), as Opacus does for Poisson sampling.

Security note: noise here comes from a seeded ``numpy.random.Generator`` so that
simulations are reproducible. That is NOT suitable for production: a deployment needs
a cryptographically secure randomness source (OS entropy, e.g. ``secrets`` /
``os.urandom``, feeding a vetted Gaussian sampler) and must guard against floating-point
attacks on the textbook Gaussian/Laplace samplers (Mironov 2012, "On significance of
the least significant bits for differential privacy"), e.g. with a discrete Gaussian
(Canonne, Kamath & Steinke 2020) or a snapping-style mechanism.
"""

from __future__ import annotations

import math

import numpy as np

from fedrisk.models.logistic import per_example_gradients

__all__ = ["clip_rows", "clip_vector", "gaussian_noise", "dp_sgd_step", "dp_sgd_epochs"]


def _check_clip_norm(clip_norm: float) -> None:
    if not (isinstance(clip_norm, (int, float)) and clip_norm > 0):  # inf allowed: no clipping
        raise ValueError(f"clip_norm must be > 0 (inf = no clipping), got {clip_norm!r}")


def clip_rows(G: np.ndarray, clip_norm: float) -> np.ndarray:
    """Scale each row of ``G`` to L2 norm ≤ ``clip_norm``; rows already inside are untouched."""
    _check_clip_norm(clip_norm)
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"G must be 2-D (rows = per-example gradients), got shape {G.shape}")
    norms = np.linalg.norm(G, axis=1)
    # scale = min(1, C/‖g‖); rows with ‖g‖ ≤ C (including zero rows) keep scale 1 exactly.
    scale = np.ones_like(norms)
    over = norms > clip_norm
    scale[over] = clip_norm / norms[over]
    return G * scale[:, None]


def clip_vector(v: np.ndarray, clip_norm: float) -> tuple[np.ndarray, float]:
    """Clip one vector (e.g. a client's model update) to L2 norm ≤ ``clip_norm``.

    Returns the clipped vector and the scale factor applied (1.0 if untouched).
    """
    _check_clip_norm(clip_norm)
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    scale = 1.0 if norm <= clip_norm else clip_norm / norm
    return v * scale, scale


def gaussian_noise(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    """N(0, std²) noise of ``shape`` from ``rng`` (simulation only: see module docstring).

    Always draws, even for std = 0, so the generator's stream (and therefore the batches
    sampled from the same generator) is identical across noise levels: runs that differ
    only in z see the same batches.
    """
    if not (isinstance(std, (int, float)) and std >= 0 and math.isfinite(std)):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    return rng.standard_normal(shape) * std


def _noise_std(noise_multiplier: float, clip_norm: float) -> float:
    if not (isinstance(noise_multiplier, (int, float)) and noise_multiplier >= 0):
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier!r}")
    if noise_multiplier == 0:
        return 0.0  # avoid 0·inf = nan when clipping is off
    if math.isinf(clip_norm):
        raise ValueError("noise without clipping bounds nothing: set a finite clip_norm")
    return float(noise_multiplier * clip_norm)


def dp_sgd_step(
    params: np.ndarray,
    X_batch: np.ndarray,
    y_batch: np.ndarray,
    *,
    clip_norm: float,
    noise_multiplier: float,
    expected_batch_size: float,
    learning_rate: float,
    l2: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One DP-SGD update on a Poisson-sampled batch; returns ``(new_params, noise)``.

    g = (Σᵢ clip(∇ℓᵢ, C) + N(0, (z·C)² I)) / (q·n), then the L2 term is added as weight
    decay on the weights (not the intercept). Weight decay touches only the parameters,
    never the data, so it costs no privacy. An empty batch is legal: the update is
    noise (and decay) only, exactly what the privacy analysis assumes.
    """
    _check_clip_norm(clip_norm)
    std = _noise_std(noise_multiplier, clip_norm)
    if not expected_batch_size > 0:
        raise ValueError(f"expected_batch_size must be > 0, got {expected_batch_size!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    params = np.asarray(params, dtype=np.float64)
    X_batch = np.asarray(X_batch, dtype=np.float64)
    y_batch = np.asarray(y_batch, dtype=np.float64).reshape(-1)
    if X_batch.size == 0:
        X_batch = X_batch.reshape(0, params.size - 1)
    if X_batch.ndim != 2 or X_batch.shape != (len(y_batch), params.size - 1):
        raise ValueError(
            f"X_batch must have shape (len(y_batch), {params.size - 1}), got {X_batch.shape}"
        )

    if len(y_batch):
        summed = clip_rows(per_example_gradients(params, X_batch, y_batch), clip_norm).sum(axis=0)
    else:
        summed = np.zeros_like(params)
    noise = gaussian_noise(rng, params.shape, std)
    grad = (summed + noise) / expected_batch_size
    grad[:-1] += l2 * params[:-1]
    return params - learning_rate * grad, noise


def dp_sgd_epochs(
    params: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: float,
    sample_rate: float,
    clip_norm: float,
    noise_multiplier: float,
    learning_rate: float,
    l2: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Run ``round(epochs / sample_rate)`` Poisson-sampled DP-SGD steps.

    Each step includes every row independently with probability q (``rng.random(n) < q``):
    that independence is what the accountant's amplification by sampling assumes, so
    no shuffling/fixed-size batches here. Returns ``(new_params, steps_taken)``; pass
    ``steps_taken`` (per round) to the accountant.
    """
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if not (isinstance(epochs, (int, float)) and epochs > 0):
        raise ValueError(f"epochs must be > 0, got {epochs!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n == 0 or X.ndim != 2 or len(X) != n:
        raise ValueError(f"X must be 2-D with len(y) > 0 rows; got X {X.shape}, y {y.shape}")
    steps = max(1, round(epochs / sample_rate))
    expected = sample_rate * n
    theta = np.array(params, dtype=np.float64, copy=True)
    for _ in range(steps):
        mask = rng.random(n) < sample_rate
        theta, _noise = dp_sgd_step(
            theta,
            X[mask],
            y[mask],
            clip_norm=clip_norm,
            noise_multiplier=noise_multiplier,
            expected_batch_size=expected,
            learning_rate=learning_rate,
            l2=l2,
            rng=rng,
        )
    return theta, steps
