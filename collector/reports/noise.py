"""The noise of share-link answers: the discrete Laplace mechanism, sampled exactly from
a deterministic stream of random bits.

The discrete Laplace distribution of scale ``b`` gives an integer ``x`` the probability
``(1 - a) / (1 + a) * a ** |x|`` with ``a = exp(-1 / b)`` (also known as the two-sided
geometric distribution). Added to a count whose value one visitor changes by at most
``sensitivity``, with ``b = sensitivity / epsilon``, it makes that count
epsilon-differentially private (Ghosh, Roughgarden and Sundararajan 2009; the proof is
in docs/privacy.md). Its variance is ``2a / (1 - a)^2``.

The sampler is that of Canonne, Kamath and Steinke, "The Discrete Gaussian for
Differential Privacy" (2020), Algorithms 1 and 2: Bernoulli trials with rational
probabilities and integer arithmetic only, so no floating-point rounding shapes the
distribution (floating-point Laplace noise leaks through its low bits, Mironov 2012).

Its random bits come from keyed BLAKE2b in counter mode over a seed. OpenDP's samplers
draw from the operating system and cannot be seeded, and share links need the opposite:
the same question on the same data must get the same noise (``collector.reports.release``
derives the seed), so that asking again learns nothing new.
"""

from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from typing import Any

SEED_BYTES = 32
_BLOCK_BYTES = 64
# Epsilons are settings (floats): as fractions they are exact up to this denominator.
EPSILON_DENOMINATOR = 10_000


class SeededBits:
    """Uniform random bits and integers, the same for the same seed, from keyed BLAKE2b."""

    def __init__(self, seed: bytes) -> None:
        if not 16 <= len(seed) <= 64:
            raise ValueError("a seed is 16 to 64 bytes")
        self._seed = seed
        self._counter = 0
        self._pool = 0
        self._pool_bits = 0

    def bits(self, count: int) -> int:
        """The next ``count`` bits, as an integer below ``2 ** count``."""
        while self._pool_bits < count:
            block = hashlib.blake2b(self._counter.to_bytes(8, "big"), key=self._seed,
                                    digest_size=_BLOCK_BYTES).digest()
            self._counter += 1
            self._pool = (self._pool << 8 * _BLOCK_BYTES) | int.from_bytes(block, "big")
            self._pool_bits += 8 * _BLOCK_BYTES
        self._pool_bits -= count
        value = self._pool >> self._pool_bits
        self._pool &= (1 << self._pool_bits) - 1
        return value

    def below(self, bound: int) -> int:
        """Uniform in ``[0, bound)``, by rejection: no modulo bias."""
        width = (bound - 1).bit_length()
        while True:
            value = self.bits(width)
            if value < bound:
                return value

    def bernoulli(self, probability: Fraction) -> bool:
        return self.below(probability.denominator) < probability.numerator

    def bernoulli_exp(self, gamma: Fraction) -> bool:
        """True with probability ``exp(-gamma)``, for a rational ``gamma >= 0`` (CKS Alg. 1)."""
        while gamma > 1:  # exp(-gamma) = exp(-1) ** floor(gamma) * exp(-rest)
            if not self._bernoulli_exp_at_most_one(Fraction(1)):
                return False
            gamma -= 1
        return self._bernoulli_exp_at_most_one(gamma)

    def _bernoulli_exp_at_most_one(self, gamma: Fraction) -> bool:
        # The first k with a failed Bernoulli(gamma / k) is odd with probability exp(-gamma).
        k = 1
        while self.bernoulli(gamma / k):
            k += 1
        return k % 2 == 1

    def discrete_laplace(self, scale: Fraction) -> int:
        """An integer with probability proportional to ``exp(-|x| / scale)`` (CKS Alg. 2)."""
        if scale <= 0:
            raise ValueError("the scale must be positive")
        t, s = scale.numerator, scale.denominator  # scale = t / s
        while True:
            uniform = self.below(t)
            if not self.bernoulli_exp(Fraction(uniform, t)):
                continue
            geometric = 0
            while self.bernoulli_exp(Fraction(1)):
                geometric += 1
            magnitude = (uniform + t * geometric) // s
            negative = self.bits(1) == 1
            if negative and magnitude == 0:
                continue  # zero would otherwise be drawn twice as often as it should
            return -magnitude if negative else magnitude


def as_fraction(epsilon: float) -> Fraction:
    """A setting's epsilon as the exact fraction the sampler works with."""
    return Fraction(epsilon).limit_denominator(EPSILON_DENOMINATOR)


def laplace_scale(sensitivity: int | Fraction, epsilon: Fraction) -> Fraction:
    """The scale that makes a count of this sensitivity epsilon-differentially private."""
    return Fraction(sensitivity) / epsilon


def child_seed(seed: bytes, label: Any) -> bytes:
    """An independent seed for one noisy number (``label``: its place in the answer)."""
    text = json.dumps(label, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), key=seed, digest_size=SEED_BYTES).digest()


def noise(seed: bytes, label: Any, scale: Fraction) -> int:
    """The noise of the number ``label`` names, for an answer seeded with ``seed``."""
    return SeededBits(child_seed(seed, label)).discrete_laplace(scale)


def variance(scale: Fraction) -> float:
    """The variance of discrete Laplace noise of ``scale`` (for tests and docs)."""
    a = math.exp(-1 / float(scale))
    return 2 * a / (1 - a) ** 2
