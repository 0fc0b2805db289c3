"""Building blocks for hidden property checks: verdicts, safe conversions, statistical tests.

Checks run in the grader's own process on plain data the sandbox returned, so
student code cannot patch them. They must be written so that

- any correct implementation passes (check properties -- agreement with a
  closed form, unbiasedness against an exact value, the variance a correct
  estimator must have -- never one seeded trajectory), and
- a message never reveals an expected value: say *what property* failed and by
  how much in standard errors or relative terms, never the number it should have
  been. Expected values go into ``details``, which only the instructor sees.

Statistical tests use a false-alarm probability ``ALPHA`` per test (a correct
submission fails one with probability about 1e-6), split over coordinates
(Bonferroni), so their thresholds follow from the sample size instead of being
tuned to pass.
"""

from __future__ import annotations

import base64
import io
import math
import zipfile
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

ALPHA = 1e-6


class Wrong(Exception):
    """A check cannot give credit for a reason the message states (e.g. every call raised): 0 for the question.

    Types, shapes and finiteness are checked before any check runs, by the question's result schema
    (:mod:`course_grader.schema`).
    """


@dataclass
class Verdict:
    """A question's outcome: ``fraction`` of its points, messages for the student, details for the instructor."""

    fraction: float
    messages: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


@dataclass
class Part:
    description: str
    weight: float
    passed: bool
    message: str


class Rubric:
    """A question split into parts, each worth ``weight`` (relative); the verdict sums what passed.

    ``part(description, weight, passed, message)`` records one part; the student sees
    ``"✓ description"`` or ``"✗ description: message"``.
    """

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.details: dict = {}

    def part(self, description: str, weight: float, passed: bool, message: str = "") -> bool:
        self.parts.append(Part(description, float(weight), bool(passed), message))
        return bool(passed)

    def verdict(self) -> Verdict:
        total = sum(p.weight for p in self.parts)
        earned = sum(p.weight for p in self.parts if p.passed)
        messages = [
            ("✓ " if p.passed else "✗ ") + p.description + ("" if p.passed or not p.message else f": {p.message}")
            for p in self.parts
        ]
        return Verdict(earned / total if total else 0.0, messages, self.details)


def _describe(raw) -> str:
    if isinstance(raw, list):
        return f"a list of {len(raw)} items"
    return type(raw).__name__


def z_threshold(n_tests: int = 1, alpha: float = ALPHA) -> float:
    """Two-sided normal threshold with family-wise false-alarm probability ``alpha`` over ``n_tests``."""
    return NormalDist().inv_cdf(1 - alpha / (2 * max(n_tests, 1)))


@dataclass
class MeanTest:
    passed: bool
    worst_z: float
    worst_index: int
    threshold: float


def mean_matches(samples: np.ndarray, exact: np.ndarray, alpha: float = ALPHA, atol: float = 1e-9) -> MeanTest:
    """Is ``exact`` (shape D) the mean of the distribution ``samples`` (shape M x D) came from?

    Per coordinate, the z-score of the sample mean with its estimated standard
    error; coordinates whose samples are all equal must equal ``exact`` up to
    ``atol``. Passing means no coordinate exceeds the Bonferroni threshold.
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    exact = np.asarray(exact, dtype=np.float64).reshape(-1)
    m = len(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(m)
    gap = np.abs(mean - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, gap / np.where(se > 0, se, 1.0), np.where(gap <= atol + 1e-9 * np.abs(exact), 0.0, np.inf))
    threshold = z_threshold(len(exact), alpha)
    worst = int(np.argmax(z))
    return MeanTest(bool(z[worst] <= threshold), float(z[worst]), worst, threshold)


def variance_matches(
    samples: np.ndarray, exact_mean: np.ndarray, predicted_total_variance: float, alpha: float = ALPHA
) -> tuple[bool, float, float]:
    """Does the estimator have the variance a correct one must have?

    Uses d_i = ||g_i - E[g]||^2 with the exact mean, whose expectation is the
    total variance (sum over coordinates); tests the mean of d with its own
    standard error. Returns (passed, measured total variance, z-score).
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    d = ((samples - np.asarray(exact_mean, dtype=np.float64).reshape(1, -1)) ** 2).sum(axis=1)
    measured = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    if se == 0:
        z = 0.0 if math.isclose(measured, predicted_total_variance, rel_tol=1e-9, abs_tol=1e-12) else math.inf
    else:
        z = abs(measured - predicted_total_variance) / se
    return z <= z_threshold(1, alpha), measured, z


def means_agree(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> tuple[bool, float, float, float]:
    """Two-sample z-test: could independent samples ``a`` and ``b`` have the same mean?

    Returns (passed, mean of a, mean of b, z-score).
    """
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    gap = abs(a.mean() - b.mean())
    z = gap / se if se > 0 else (0.0 if gap < 1e-12 else math.inf)
    return z <= z_threshold(1, alpha), float(a.mean()), float(b.mean()), z


def same_variance(
    samples_a: np.ndarray, samples_b: np.ndarray, exact_mean: np.ndarray, alpha: float = ALPHA
) -> tuple[bool, float, float, float]:
    """Do two estimators (a: the student's, b: the grader's reference) have the same total variance?

    Compares the means of d = ||g - E[g]||^2 (whose expectation is the total
    variance) with :func:`means_agree`. Returns (passed, variance a, variance b, z-score).
    """
    mu = np.asarray(exact_mean, dtype=np.float64).reshape(1, -1)
    da = ((np.asarray(samples_a, dtype=np.float64).reshape(len(samples_a), -1) - mu) ** 2).sum(axis=1)
    db = ((np.asarray(samples_b, dtype=np.float64).reshape(len(samples_b), -1) - mu) ** 2).sum(axis=1)
    return means_agree(da, db, alpha)


MAX_ARRAY_MEMBERS = 512
MAX_ARRAY_BYTES = 256 * 2**20  # all arrays of one result together, decompressed


def _npz_headers(zf, name: str) -> dict[str, tuple[tuple[int, ...], np.dtype, int]]:
    """Each member's key, shape, dtype and data size, read from the zip and .npy headers only (no array data)."""
    infos = zf.infolist()
    if len(infos) > MAX_ARRAY_MEMBERS:
        raise Wrong(f"{name} holds {len(infos)} arrays, more than the {MAX_ARRAY_MEMBERS} the grader reads")
    if sum(info.file_size for info in infos) > MAX_ARRAY_BYTES + 4096 * len(infos):
        raise Wrong(f"{name} unpacks to more than {MAX_ARRAY_BYTES // 2**20} MB")
    headers = {}
    for info in infos:
        key = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else None
        if not key or key in headers or info.is_dir():
            raise Wrong(f"{name}: the archive member {info.filename[:80]!r} is not one array")
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=4096)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=4096)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
        if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None:
            raise Wrong(f"{name}: {key} is not numeric (dtype {dtype})")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
        if size != info.file_size - offset:
            raise Wrong(f"{name}: {key}'s header does not match its data")
        headers[key] = (tuple(int(n) for n in shape), dtype, size)
    return headers


def load_arrays(blob, name: str = "the returned weights", expected: dict | None = None) -> dict[str, np.ndarray]:
    """Decode ``h.arrays(...)`` output (an .npz) into a dict of arrays, checking before reading any data.

    The zip's and each ``.npy``'s headers are read first: member names, numeric dtypes, shapes and the
    decompressed size (at most ``MAX_ARRAY_BYTES``; the zip reader never returns more than a member's
    declared size, so a small archive cannot expand in the grader's memory). With ``expected``
    (``{key: shape}``) the keys and shapes must match exactly. Pickle stays disabled.
    """
    if not isinstance(blob, dict) or not isinstance(blob.get("__npz__"), str):
        raise Wrong(f"{name}: expected tensors packed by the grader's driver, got {_describe(blob)}")
    try:
        data = base64.b64decode(blob["__npz__"], validate=True)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            headers = _npz_headers(zf, name)
            if expected is not None:
                missing, extra = sorted(set(expected) - set(headers)), sorted(set(headers) - set(expected))
                if missing or extra:
                    raise Wrong(
                        f"{name} does not fit the network: missing keys {missing[:5]}, unexpected keys {extra[:5]}"
                    )
                for key, shape in expected.items():
                    if headers[key][0] != tuple(shape):
                        raise Wrong(f"{name}: {key} has shape {headers[key][0]}, the network needs {tuple(shape)}")
            arrays = {}
            for key in headers:
                with zf.open(key + ".npy") as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False, max_header_size=4096)
            return arrays
    except Wrong:
        raise
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as err:
        raise Wrong(f"{name} could not be read as arrays ({type(err).__name__})") from None


def load_state_dict(blob, module, name: str = "the returned state_dict"):
    """Load the student's weights into the grader's own ``module`` (same architecture), strictly.

    Every key and shape must match ``module.state_dict()``; values must be
    finite. Returns ``module`` (in eval mode), ready to evaluate in an
    environment the grader controls.
    """
    import torch

    expected = module.state_dict()
    arrays = load_arrays(blob, name, {key: tuple(ref.shape) for key, ref in expected.items()})
    tensors = {}
    for key, ref in expected.items():
        array = arrays[key]
        if tuple(array.shape) != tuple(ref.shape):
            raise Wrong(f"{name}: {key} has shape {tuple(array.shape)}, the network needs {tuple(ref.shape)}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise Wrong(f"{name}: {key} contains NaN or infinite values")
        tensors[key] = torch.as_tensor(np.array(array), dtype=ref.dtype)
    module.load_state_dict(tensors, strict=True)
    return module.eval()
