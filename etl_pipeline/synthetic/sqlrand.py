"""Deterministic pseudo-random SQL expressions, evaluated inside MariaDB row by row.

Every value is a function of (seed, salt, key): CRC32 of the key and salt, XORed with the seed and
multiplied by an odd constant so that different salts of the same key are not linearly related
(CRC32 alone is affine in its input). The same seed always yields the same database.
"""

from __future__ import annotations

_SCALE = "2.3283064365386963e-10"  # 1 / 2**32, a DOUBLE literal (integer division would be DECIMAL(.4))


def sql_str(value: str) -> str:
    """A MariaDB string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Rand:
    def __init__(self, seed: int, tag: str = ""):
        self.seed = int(seed)
        self.mix = (self.seed * 2246822519 + 374761393) % 4294967296
        self.tag = tag

    def u(self, salt: str, key: str = "s.seq") -> str:
        """Uniform double in [0, 1)."""
        return (
            f"((((CRC32(CONCAT({key}, '/{self.tag}{salt}')) ^ {self.mix}) * 2654435761) "
            f"% 4294967296) * {_SCALE})"
        )

    def int(self, n: int | str, salt: str, key: str = "s.seq") -> str:
        """Integer in 1..n."""
        return f"(1 + FLOOR({self.u(salt, key)} * ({n})))"

    def between(self, lo: float, hi: float, salt: str, key: str = "s.seq", digits: int = 2) -> str:
        return f"ROUND({lo} + {self.u(salt, key)} * {hi - lo}, {digits})"

    def chance(self, p: float, salt: str, key: str = "s.seq") -> str:
        return f"({self.u(salt, key)} < {p})"

    def pick(self, values: list[str], salt: str, key: str = "s.seq") -> str:
        """One of the SQL expressions in `values` (repeat a value to weight it)."""
        return f"ELT({self.int(len(values), salt, key)}, {', '.join(values)})"

    def pick_str(self, values: list[str], salt: str, key: str = "s.seq") -> str:
        return self.pick([sql_str(v) if v is not None else "NULL" for v in values], salt, key)
