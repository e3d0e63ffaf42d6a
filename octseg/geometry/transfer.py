"""Chunks of label maps on the measuring device.

On a CPU a chunk is a view of the host array. On a GPU the next chunk travels while the current
one is measured: a thread copies it into page-locked (pinned) host memory and starts its
host-to-device copy on a side stream. From pageable memory the copy is staged by the driver and
blocks the host for its whole length: on an H200 it was most of the GPU's busy time in the
geometry benchmark (docs/gpu.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from octseg.core.errors import InputError
from octseg.geometry.kernels import pieces

Span = tuple[int, int]


def spans(n: int, chunk: int) -> list[Span]:
    """``(start, stop)`` of each chunk of ``chunk`` frames out of ``n`` (``kernels.pieces``)."""
    return [(p.start, p.stop) for p in pieces(n, 1, chunk)]


def device_chunks(
    labels: np.ndarray, chunk: int, device: torch.device | str
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(start, stop, tensor)`` for each chunk of ``labels`` (frames first) on ``device``."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(None, f"device {dev}: this torch ({torch.__version__}) sees no CUDA GPU")
    parts = spans(len(labels), chunk)
    if dev.type != "cuda" or len(parts) < 2:
        for a, b in parts:
            yield a, b, torch.from_numpy(np.ascontiguousarray(labels[a:b])).to(dev)
        return
    yield from staged_chunks(labels, parts, dev)


def staged_chunks(
    labels: np.ndarray, parts: list[Span], dev: torch.device, pin: bool = True
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """The chunks ``parts`` of ``labels`` on ``dev``, each staged by a thread in one of two
    reusable host buffers (pinned with ``pin``) while the consumer works on the one before.
    A buffer is refilled only once its last copy to the device has finished. Off CUDA (tests)
    the "copy" is a clone of the buffer."""
    cuda = dev.type == "cuda"
    size = max(b - a for a, b in parts)
    dtype = torch.from_numpy(np.empty(0, labels.dtype)).dtype
    bufs = [torch.empty((size, *labels.shape[1:]), dtype=dtype, pin_memory=pin) for _ in (0, 1)]
    copied: list = [None, None]  # per buffer: the event after its last copy, once consumed
    stream = torch.cuda.Stream(dev) if cuda else None

    def stage(k: int) -> tuple[torch.Tensor, object]:
        a, b = parts[k]
        buf = bufs[k % 2][: b - a]
        if copied[k % 2] is not None:
            copied[k % 2].synchronize()
        np.copyto(buf.numpy(), labels[a:b])
        if not cuda:
            return buf.clone(), None
        with torch.cuda.device(dev), torch.cuda.stream(stream):
            out = buf.to(dev, non_blocking=True)
            done = torch.cuda.Event(blocking=True)  # waited on by this thread: no spinning
            done.record(stream)
        return out, done

    with ThreadPoolExecutor(1, thread_name_prefix="octseg-stage") as pool:
        pending = pool.submit(stage, 0)
        for k, (a, b) in enumerate(parts):
            out, done = pending.result()
            copied[k % 2] = done
            if k + 1 < len(parts):
                pending = pool.submit(stage, k + 1)
            if cuda:
                current = torch.cuda.current_stream(dev)
                current.wait_event(done)
                out.record_stream(current)  # allocated on the side stream, used on this one
            yield a, b, out


__all__ = ["device_chunks", "staged_chunks", "spans"]
