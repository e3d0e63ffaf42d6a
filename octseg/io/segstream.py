"""DICOM-SEG of a whole pullback with bounded memory.

highdicom builds a SEG in memory: the label maps, a bit-packed copy of every frame and their
join (about 2.2x the label maps on top of them: ~2.3 GB for a 1 GB pullback). Here highdicom
builds a *template* SEG from at most two label frames (all segments, empty frames kept), which
gives the header, the shared functional groups and the form of a per-frame item; the per-frame
items of every (segment, frame) are then made from that form, and the pixel data is bit-packed
and written to the file chunk by chunk. Frames are in highdicom's order (segment by segment,
planes sorted along the normal as highdicom sorts them) and, as highdicom does, frames in which a
segment is empty are left out (all frames are kept where every segment is empty everywhere).
"""

from __future__ import annotations

import copy
import struct
from pathlib import Path
from typing import Any

import numpy as np

#: label frames bit-packed per step
CHUNK_FRAMES = 32


def template_frames(n: int) -> list[int]:
    """The label frames highdicom gets for the template: two (to learn its plane order)."""
    return list(range(min(n, 2)))


def _plane_order(z: np.ndarray, template: Any, tmpl_idx: list[int]) -> np.ndarray:
    """Label frames in highdicom's plane order (ascending or descending z, as in the template)."""
    descending = False
    if len(tmpl_idx) == 2 and z[tmpl_idx[0]] != z[tmpl_idx[1]]:
        first = [
            it
            for it in template.PerFrameFunctionalGroupsSequence
            if int(it.FrameContentSequence[0].DimensionIndexValues[1]) == 1
        ][0]
        z_first = float(first.PlanePositionSequence[0].ImagePositionPatient[2])
        descending = z_first == max(z[tmpl_idx[0]], z[tmpl_idx[1]])
    order = np.argsort(-z if descending else z, kind="stable")
    return order


def _presence(seg_map: np.ndarray, n_segments: int) -> np.ndarray:
    """``(segments, frames)`` bool: segment ``s + 1`` has pixels in frame ``k``."""
    present = np.zeros((n_segments, seg_map.shape[0]), bool)
    for a in range(0, seg_map.shape[0], CHUNK_FRAMES):
        chunk = seg_map[a : a + CHUNK_FRAMES]
        for s in range(n_segments):
            present[s, a : a + len(chunk)] = (chunk == s + 1).any(axis=(1, 2))
    if not present.any():  # highdicom keeps every frame when all are empty
        present[:] = True
    return present


def _items(template: Any, frames: list[tuple[int, int]], idx, planes, ranks) -> list:
    """One per-frame functional group item per (segment, label frame); ``planes``: each label
    frame's Plane Position Sequence as highdicom formats it."""
    form = template.PerFrameFunctionalGroupsSequence[0]
    items = []
    for seg_no, k in frames:
        item = copy.deepcopy(form)
        item.FrameContentSequence[0].DimensionIndexValues = [seg_no, int(ranks[k])]
        item.PlanePositionSequence = copy.deepcopy(planes[k])
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        src.ReferencedFrameNumber = int(idx[k]) + 1
        item.SegmentIdentificationSequence[0].ReferencedSegmentNumber = seg_no
        items.append(item)
    return items


def _fix_slice_spacing(header: Any, z: np.ndarray) -> None:
    """Spacing Between Slices for the whole pullback (the template saw two frames only): the
    step where regular, else absent."""
    pm = header.SharedFunctionalGroupsSequence[0].get("PixelMeasuresSequence")
    if not pm or "SpacingBetweenSlices" not in pm[0]:
        return
    steps = np.abs(np.diff(np.sort(z)))
    if steps.size and np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6):
        pm[0].SpacingBetweenSlices = f"{steps[0]:.10g}"
    else:
        del pm[0].SpacingBetweenSlices


def _write_bits(fh, seg_map: np.ndarray, frames: list[tuple[int, int]]) -> int:
    """Bit-pack ``frames`` (segment, label frame) in order, little-endian bit order as DICOM
    wants, chunk by chunk with a carry of < 8 bits between chunks; returns bytes written."""
    carry = np.zeros(0, bool)
    written = 0
    for a in range(0, len(frames), CHUNK_FRAMES):
        part = frames[a : a + CHUNK_FRAMES]
        bits = np.concatenate([carry] + [(seg_map[k] == s).reshape(-1) for s, k in part])
        whole = len(bits) // 8 * 8
        data = np.packbits(bits[:whole], bitorder="little").tobytes()
        fh.write(data)
        written += len(data)
        carry = bits[whole:]
    if carry.size:
        data = np.packbits(carry, bitorder="little").tobytes()
        fh.write(data)
        written += len(data)
    return written


def write_streamed(
    tmp: Path, template: Any, seg_map: np.ndarray, idx, planes: list, tmpl_idx: list[int]
) -> None:
    """Write the SEG of all label frames to ``tmp``: ``template``'s header with every frame's
    functional groups, then the pixel data streamed. ``planes``: each label frame's
    ``highdicom.PlanePositionSequence`` (z = its position along the pullback)."""
    z = np.array([float(p[0].ImagePositionPatient[2]) for p in planes])
    n_segments = len(template.SegmentSequence)
    present = _presence(seg_map, n_segments)
    # planes empty in every segment are dropped before highdicom numbers the positions
    order = [k for k in _plane_order(z, template, tmpl_idx) if present[:, k].any()]
    ranks = np.zeros(len(z), np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    frames = [(s + 1, int(k)) for s in range(n_segments) for k in order if present[s, k]]
    header = template
    header.PerFrameFunctionalGroupsSequence = _items(template, frames, idx, planes, ranks)
    header.NumberOfFrames = len(frames)
    _fix_slice_spacing(header, z)
    del header.PixelData
    header.save_as(tmp, enforce_file_format=True)
    rows, cols = int(header.Rows), int(header.Columns)
    nbytes = (len(frames) * rows * cols + 7) // 8
    implicit = header.file_meta.TransferSyntaxUID.is_implicit_VR
    with open(tmp, "ab") as fh:
        if implicit:
            fh.write(struct.pack("<HHI", 0x7FE0, 0x0010, nbytes + nbytes % 2))
        else:
            fh.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, nbytes + nbytes % 2))
        written = _write_bits(fh, seg_map, frames)
        if written != nbytes:  # pragma: no cover - arithmetic guard
            raise RuntimeError(f"SEG pixel data: wrote {written} bytes, expected {nbytes}")
        if nbytes % 2:
            fh.write(b"\0")
