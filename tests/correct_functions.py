"""Correct functions with their exact gradients, in families that have tempted gradient
checks into false accusations: saturation, noise, cancellation, huge arguments and kinks
away from the point. Shared by the no-false-accusation test and its benchmark."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    family: str
    f: Callable[[Any], Any]
    grad: Callable[[Any], Any]
    x: np.ndarray
    method: str = "auto"


def _softplus(z):
    # log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def smooth(rng) -> Case:
    n = int(rng.integers(2, 8))
    c, d = rng.uniform(-2, 2, n), rng.uniform(0.5, 2, n)
    x = rng.uniform(-2, 2, n)
    return Case("smooth", lambda p: np.sum(c * np.sin(d * p) + p ** 4 / 12),
                lambda p: c * d * np.cos(d * p) + p ** 3 / 3, x)


def huge_logits(rng) -> Case:
    n = int(rng.integers(3, 7))
    scale = 10.0 ** rng.uniform(2, 7)
    z = scale * (1 + 1e-4 * rng.standard_normal(n)) * rng.choice([-1, 1])
    z[0] += rng.uniform(-3, 3)

    def lse(p):
        m = np.max(p)
        return m + np.log(np.sum(np.exp(p - m)))

    def lse_grad(p):
        e = np.exp(p - np.max(p))
        return e / np.sum(e)

    return Case("huge_logits", lse, lse_grad, z)


def saturated_logistic(rng) -> Case:
    """Logistic regression with weights that drive the outputs to 0 or 1."""
    m, n = int(rng.integers(3, 7)), int(rng.integers(2, 5))
    X = rng.uniform(0, 255, (m, n))  # raw pixel-like inputs
    y = (rng.uniform(size=m) > 0.5).astype(float)
    w = rng.standard_normal(n) * 0.3

    def f(p):
        z = X @ p
        return np.mean(_softplus(z) - y * z)  # binary cross-entropy, stable

    def g(p):
        return X.T @ (_sigmoid(X @ p) - y) / m

    return Case("saturated_logistic", f, g, w)


def relu_net_raw_inputs(rng) -> Case:
    """A one-hidden-layer ReLU network with a sigmoid output on unscaled 0-255 inputs."""
    m, n, k = int(rng.integers(3, 6)), 3, int(rng.integers(2, 5))
    X = rng.uniform(0, 255, (m, n))
    y = (rng.uniform(size=m) > 0.5).astype(float)
    W0 = rng.standard_normal((k, n)) * 0.05
    v0 = rng.standard_normal(k) * 0.5

    def unpack(p):
        return p[:k * n].reshape(k, n), p[k * n:]

    def f(p):
        W, v = unpack(p)
        z = np.maximum(X @ W.T, 0) @ v
        return np.mean(_softplus(z) - y * z)

    def g(p):
        W, v = unpack(p)
        pre = X @ W.T
        h = np.maximum(pre, 0)
        dz = (_sigmoid(h @ v) - y) / m
        dW = ((dz[:, None] * v[None, :]) * (pre > 0)).T @ X
        return np.concatenate([dW.ravel(), h.T @ dz])

    return Case("relu_net_raw_inputs", f, g, np.concatenate([W0.ravel(), v0]))


def noisy(rng) -> Case:
    """f with relative noise 1e-14..1e-12 (a summation order that changes per call)."""
    n = int(rng.integers(2, 6))
    c = rng.uniform(0.5, 2, n)
    level = 10.0 ** rng.uniform(-14, -12)
    noise = np.random.default_rng(int(rng.integers(1 << 30)))
    method = str(rng.choice(["auto", "richardson", "central", "complex_step"]))

    def f(p):
        value = np.sum(c * np.cos(p))
        return value * (1 + level * noise.standard_normal())

    return Case(f"noisy_{method}", f, lambda p: -c * np.sin(p), rng.uniform(-2, 2, n),
                method)


def cancellation(rng) -> Case:
    """(x₀ + C)² - C² - 2C·x₀ + Σ q·x²: large terms that cancel inside f."""
    n = int(rng.integers(2, 5))
    big = 10.0 ** rng.uniform(3, 7)
    q = rng.uniform(0.5, 2, n)

    def f(p):
        return (p[0] + big) ** 2 - big ** 2 - 2 * big * p[0] + np.sum(q * p * p)

    def g(p):
        out = 2 * q * p
        out[0] += 2 * p[0]
        return out

    return Case("cancellation", f, g, rng.uniform(-1, 1, n))


def kink_away(rng) -> Case:
    """|x - c| and ReLU(x - c) with every kink at least 0.01 away from x (inside the
    largest steps of Richardson, outside the small ones)."""
    n = int(rng.integers(2, 6))
    c = rng.uniform(-1, 1, n)
    gap = rng.uniform(0.01, 0.5, n) * rng.choice([-1, 1], n)
    w = rng.uniform(0.5, 2, n)
    x = c + gap
    if rng.uniform() < 0.5:
        return Case("kink_away_abs", lambda p: np.sum(w * np.abs(p - c)),
                    lambda p: w * np.sign(p - c), x)
    return Case("kink_away_relu", lambda p: np.sum(w * np.maximum(p - c, 0) + p * p / 2),
                lambda p: w * (p > c) + p, x)


def float32_saturated(rng) -> Case:
    """Softplus loss in float32 at pre-activations |z| > 88 (exp(z) overflows there)."""
    n = int(rng.integers(2, 5))
    z = (rng.uniform(88, 120, n) * rng.choice([-1, 1], n)).astype(np.float32)
    y = (rng.uniform(size=n) > 0.5).astype(np.float32)

    def f(p):
        return np.sum(_softplus(p) - y * p)

    return Case("float32_saturated", f, lambda p: _sigmoid(p) - y, z)


FAMILIES = (smooth, huge_logits, saturated_logistic, relu_net_raw_inputs, noisy,
            cancellation, kink_away, float32_saturated)


def cases(count: int, seed: int = 0) -> Iterator[Case]:
    """`count` cases cycling through the families, each drawn from its own seed."""
    for i in range(count):
        yield FAMILIES[i % len(FAMILIES)](np.random.default_rng([seed, i]))
