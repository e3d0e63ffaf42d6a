"""Chunks of label maps on the measuring device (octseg.geometry.transfer): every frame once, in
order, with the staging thread's two reusable buffers (the GPU path's logic, run on the CPU)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from octseg.core.errors import InputError
from octseg.geometry.transfer import device_chunks, spans, staged_chunks


def _labels(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 5, size=(n, 6, 7), dtype=np.uint8)


def test_spans_cover_every_frame_once():
    assert spans(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert spans(3, 8) == [(0, 3)]
    assert spans(0, 8) == []


@pytest.mark.parametrize("n, chunk", [(11, 3), (12, 4), (2, 5), (9, 1)])
def test_staged_chunks_keep_every_chunk_although_the_buffers_are_reused(n, chunk):
    labels = _labels(n)
    held = list(staged_chunks(labels, spans(n, chunk), torch.device("cpu"), pin=False))
    # all chunks are held at once: a chunk handed out must not change when its buffer is refilled
    assert [(a, b) for a, b, _ in held] == spans(n, chunk)
    for a, b, t in held:
        assert t.dtype == torch.uint8
        np.testing.assert_array_equal(t.numpy(), labels[a:b])


def test_cpu_chunks_are_views_of_the_labels():
    labels = _labels(7)
    out = list(device_chunks(labels, 3, "cpu"))
    assert [(a, b) for a, b, _ in out] == [(0, 3), (3, 6), (6, 7)]
    out[0][2][0, 0, 0] = 9  # no copy on the CPU: the chunk shares the labels' memory
    assert labels[0, 0, 0] == 9


def test_a_consumer_that_stops_early_leaves_no_thread_behind():
    labels = _labels(20)
    gen = staged_chunks(labels, spans(20, 2), torch.device("cpu"), pin=False)
    first = next(gen)
    gen.close()  # e.g. an error while measuring the first chunk
    np.testing.assert_array_equal(first[2].numpy(), labels[0:2])
    assert not any(t.name.startswith("octseg-stage") for t in threading.enumerate())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(InputError, match="device cuda.*sees no CUDA GPU"):
        next(device_chunks(_labels(4), 2, "cuda"))


class _Flaky(np.ndarray):
    """Labels whose third frame onward cannot be read (a file that went away mid-pullback)."""

    def __getitem__(self, key):
        if isinstance(key, slice) and (key.start or 0) >= 2:
            raise OSError("disk went away")
        return super().__getitem__(key)


def test_a_staging_failure_reaches_the_consumer_and_leaves_no_thread():
    labels = _labels(6).view(_Flaky)
    got = []
    with pytest.raises(OSError, match="disk went away"):
        for a, b, _ in staged_chunks(labels, spans(6, 2), torch.device("cpu"), pin=False):
            got.append((a, b))
    assert got == [(0, 2)]  # the first chunk came through before the failure
    assert not any(t.name.startswith("octseg-stage") for t in threading.enumerate())


def test_memory_mapped_labels_are_staged(tmp_path):
    np.save(tmp_path / "labels.npy", _labels(9))
    labels = np.load(tmp_path / "labels.npy", mmap_mode="r")
    held = list(staged_chunks(labels, spans(9, 4), torch.device("cpu"), pin=False))
    for a, b, t in held:
        np.testing.assert_array_equal(t.numpy(), labels[a:b])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_chunks_are_exact_under_a_slow_consumer():
    """Every chunk on the GPU equals its frames although the measuring stream lags behind the
    copies (a sleep kernel per chunk) and every chunk is held: a buffer refilled before its copy
    finished, or a chunk used before its copy, would show as a mismatch."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, size=(90, 1024, 1024), dtype=np.uint8)
    held = []
    for a, b, t in device_chunks(labels, 16, "cuda"):
        torch.cuda._sleep(20_000_000)  # the consumer's stream is busy while the next copies run
        held.append((a, b, t.clone()))  # cloned on the consumer's stream, after the sleep
    assert [(a, b) for a, b, _ in held] == spans(90, 16)
    for a, b, t in held:
        assert torch.equal(t.cpu(), torch.from_numpy(labels[a:b]))
