"""A video's faces over time: tracks matched by box overlap, ``timeline.csv`` and ``timeline.png``."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from .boxes import Box, greedy_match, iou_matrix

TRACK_IOU = 0.3
MAX_GAP = 5  # analysed frames a track may go unseen before a face there starts a new track
MAX_PANELS = 12
DPI = 100


@dataclass
class Sighting:
    """One face in one analysed frame."""

    frame: int
    time: float
    track: int
    box: Box
    probs: np.ndarray


class Tracker:
    """Gives each face the track whose last box overlaps it most (greedy IoU, best first)."""

    def __init__(self, threshold: float = TRACK_IOU, max_gap: int = MAX_GAP):
        self.threshold, self.max_gap = threshold, max_gap
        self.last: Dict[int, Box] = {}
        self.unseen: Dict[int, int] = {}
        self.count = 0

    def assign(self, boxes: Sequence[Box]) -> List[int]:
        live = [t for t in self.last if self.unseen[t] <= self.max_gap]
        ids: List[int] = [-1] * len(boxes)
        if live and boxes:
            for r, c in greedy_match(iou_matrix(boxes, [self.last[t] for t in live]), self.threshold):
                ids[r] = live[c]
        for i in range(len(ids)):
            if ids[i] < 0:
                ids[i], self.count = self.count, self.count + 1
        for t in self.unseen:
            self.unseen[t] += 1
        for i, box in zip(ids, boxes):
            self.last[i], self.unseen[i] = box, 0
        return ids


def write_csv(sightings: Sequence[Sighting], names: Sequence[str], path: str) -> None:
    """Columns: frame, time (s), face (track), x, y, w, h, then one probability per class."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["frame", "time", "face", "x", "y", "w", "h", *names])
        for s in sightings:
            b = s.box
            out.writerow([s.frame, f"{s.time:.3f}", s.track, b.x, b.y, b.w, b.h, *(f"{p:.6f}" for p in s.probs)])


def plot_timeline(sightings: Sequence[Sighting], names: Sequence[str], path: str, title: str = "") -> None:
    """Probability of each class over time, one panel per tracked face (the longest tracks first)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracks = sorted({s.track for s in sightings}, key=lambda t: (-sum(s.track == t for s in sightings), t))
    shown = tracks[:MAX_PANELS]
    rows = max(1, len(shown))
    fig = Figure(figsize=(9, 1.0 + 2.2 * rows), dpi=DPI)
    FigureCanvasAgg(fig)
    if not shown:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no face found in the analysed frames", ha="center", va="center")
        ax.set_axis_off()
    for row, track in enumerate(shown):
        mine = [s for s in sightings if s.track == track]
        t = np.array([s.time for s in mine])
        probs = np.stack([s.probs for s in mine])
        ax = fig.add_subplot(rows, 1, row + 1)
        for c, name in enumerate(names):
            ax.plot(t, probs[:, c], marker="." if len(t) < 40 else None, label=name)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"face {track}\nprobability")
        ax.grid(alpha=0.3)
        if row == 0:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        if row == rows - 1:
            ax.set_xlabel("time (s)")
    if len(tracks) > len(shown):
        title = f"{title} ({len(shown)} of {len(tracks)} faces shown: the longest tracks)".strip()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, path)
