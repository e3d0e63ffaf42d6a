"""octseg.io.npz.load_npz: the same arrays as ``np.load`` (orders, dtypes, subsets), the same
errors for damaged files, and safe from several threads at once (CPython gh-106905)."""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from octseg.io.npz import load_npz


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "frames": rng.integers(0, 256, (3, 17, 11), dtype=np.uint8),
        "f32": rng.random((5, 4), dtype=np.float32),
        "fortran": np.asfortranarray(rng.random((6, 7))),
        "scalar": np.float64(0.01),
        "empty": np.zeros((0, 3), np.int16),
        "be": np.arange(5, dtype=">u2"),
        "text": np.array("polar"),
    }


@pytest.mark.parametrize("compressed", [True, False])
def test_same_arrays_as_np_load(tmp_path, compressed):
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **_arrays())
    got = load_npz(path)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(got) == sorted(z.files)
        for k in z.files:
            assert got[k].dtype == z[k].dtype and got[k].shape == z[k].shape
            np.testing.assert_array_equal(got[k], z[k])  # same bytes, no arithmetic
            assert got[k].flags.writeable
    assert set(load_npz(path, keys={"f32"})) == {"f32"}
    assert "frames" not in load_npz(path, skip={"frames"}, require={"frames"})


def test_missing_keys_objects_and_damage_raise(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(KeyError):
        load_npz(path, keys={"frames"})
    with pytest.raises(KeyError):
        load_npz(path, require={"frames"})
    obj = tmp_path / "o.npz"
    np.savez(obj, o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="object arrays"):
        load_npz(obj)
    cut = tmp_path / "cut.npz"
    np.savez(cut, a=np.arange(10_000))
    cut.write_bytes(cut.read_bytes()[:5000])
    with pytest.raises((zipfile.BadZipFile, EOFError, ValueError, OSError)):
        load_npz(cut)


def test_many_threads_read_the_same_arrays(tmp_path):
    paths = []
    for i in range(8):
        p = tmp_path / f"{i}.npz"
        np.savez_compressed(p, **{f"m{j}": np.full((4, 4), i + j, np.int32) for j in range(20)})
        paths.append(p)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(load_npz, paths * 6))
    for i, got in enumerate(results):
        assert int(got["m3"][0, 0]) == i % 8 + 3
