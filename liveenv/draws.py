"""Random numbers of the served requests, drawn ahead in blocks.

Every served request consumes one *row* of the stream: ``width`` uniforms
(the ``U_*`` columns of :mod:`liveenv.response` and one per slate position)
and ``dim`` normals with standard deviation ``scale`` (the drift of the viewer's
interests). Rows are
drawn from the stream's own generator in blocks of ``block`` rows, so the
``i``-th request served gets the same row however the requests are grouped
into batches, and one request costs no call into the generator.
"""

from __future__ import annotations

import numpy as np


class DrawStream:
    """Rows of uniforms and normals, handed out in order."""

    def __init__(
        self, rng: np.random.Generator, width: int, dim: int, scale: float = 1.0, block: int = 4096
    ) -> None:
        if width < 1 or dim < 1 or block < 1:
            raise ValueError(
                f"DrawStream(width={width}, dim={dim}, block={block}): all must be >= 1"
            )
        self.rng, self.width, self.dim, self.block = rng, int(width), int(dim), int(block)
        self.scale = np.float32(scale)
        self.served = 0  # rows handed out so far
        self._refill()

    def _refill(self) -> None:
        self._u = self.rng.random((self.block, self.width))
        self._z = self.rng.standard_normal((self.block, self.dim), dtype=np.float32)
        self._z *= self.scale
        self._ul: list[list[float]] | None = None  # the block as Python floats, made on demand
        self._i = 0

    def one(self) -> tuple[list[float], np.ndarray]:
        """The next row: uniforms as a list of floats, normals as a ``(dim,)`` array."""
        if self._i == self.block:
            self._refill()
        if self._ul is None:
            self._ul = self._u.tolist()
        i = self._i
        self._i = i + 1
        self.served += 1
        return self._ul[i], self._z[i]

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` rows: ``(n, width)`` uniforms and ``(n, dim)`` normals."""
        us, zs, need = [], [], n
        while need:
            if self._i == self.block:
                self._refill()
            k = min(need, self.block - self._i)
            us.append(self._u[self._i : self._i + k])
            zs.append(self._z[self._i : self._i + k])
            self._i += k
            need -= k
        self.served += n
        if len(us) == 1:
            return us[0], zs[0]
        return np.concatenate(us), np.concatenate(zs)
