"""The original fused ConvLSTM-LSTM in PyTorch, for timing against the course's Keras model (``make bench``).

    pip install -e ".[torch]"                  # the optional extra: PyTorch's CPU wheel
    python benchmarks/torch_original.py        # one timing, batch 16 at the seed shapes
    python benchmarks/torch_original.py --json # the same as one JSON line (what benchmarks.speed reads)

The layers are the original's (Kaushik 2022, see the docstring of ``utils/models.py``): two ``LSTMCell`` (1662
-> 512
-> 512) over the keypoints; two ConvLSTM cells (16 filters, 5x5, one convolution of [frame, hidden], ReLU cell
activation, peephole weights per channel and pixel), each followed by ``BatchNorm3d``; the last step; a 5x5
convolution to 3 channels; the two flattened and concatenated under one ``Linear``. Adam(lr 1e-4,
weight_decay 0.8), cross-entropy. With 11 outputs it has the original's 7,174,718 parameters
(:func:`utils.models.original_param_count`); the Keras ``seed`` model has no peepholes and one LSTM bias.

Two of the original's defects are not reproduced, as they change what is computed but not its cost: keypoints
are read batch-first (the original's ``view(T, batch, -1)`` mixed clips) and the states start at zero (the
original drew random ones on every call). Frames are scaled by 1/255 like the Keras model's ``Rescaling``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

SEED_SHAPES = {"num_frames": 30, "image_size": 64, "keypoint_dim": 1662}


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: a convolution of [input, hidden] to the four gates, with peephole weights."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, image_size: int,
                 peepholes: bool = True) -> None:
        super().__init__()
        self.filters = filters
        self.conv = nn.Conv2d(in_channels + filters, 4 * filters, kernel_size, padding=kernel_size // 2)
        shape = (filters, image_size, image_size)
        self.peepholes = peepholes
        if peepholes:  # the original left these uninitialised (torch.Tensor); small random values here
            self.w_ci, self.w_cf, self.w_co = (nn.Parameter(0.01 * torch.randn(shape)) for _ in range(3))

    def forward(self, x: torch.Tensor, hidden: torch.Tensor,
                cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden, cell) after one step; ReLU as the cell activation, as in the original."""
        gate_i, gate_f, gate_c, gate_o = torch.chunk(self.conv(torch.cat([x, hidden], dim=1)), 4, dim=1)
        if self.peepholes:
            gate_i, gate_f = gate_i + self.w_ci * cell, gate_f + self.w_cf * cell
        cell = torch.sigmoid(gate_f) * cell + torch.sigmoid(gate_i) * torch.relu(gate_c)
        if self.peepholes:
            gate_o = gate_o + self.w_co * cell
        return torch.sigmoid(gate_o) * torch.relu(cell), cell


class ConvLSTM(nn.Module):
    """A ConvLSTM cell unrolled over time: (B, C, T, H, W) -> (B, F, T, H, W), zero initial state."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, image_size: int,
                 peepholes: bool = True) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, filters, kernel_size, image_size, peepholes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Every step's hidden state, stacked on the time axis."""
        batch, _, steps, height, width = frames.shape
        hidden = frames.new_zeros((batch, self.cell.filters, height, width))
        cell = torch.zeros_like(hidden)
        outputs = []
        for step in range(steps):
            hidden, cell = self.cell(frames[:, :, step], hidden, cell)
            outputs.append(hidden)
        return torch.stack(outputs, dim=2)


class OriginalFused(nn.Module):
    """The original fused model: keypoint LSTMCells + frame ConvLSTMs, concatenated under one Linear."""

    def __init__(self, num_classes: int = 11, num_frames: int = 30, image_size: int = 64,
                 keypoint_dim: int = 1662, lstm_units: tuple[int, ...] = (512, 512),
                 filters: tuple[int, ...] = (16, 16), kernel_size: int = 5, reduce_channels: int = 3,
                 peepholes: bool = True) -> None:
        super().__init__()
        sizes = (keypoint_dim, *lstm_units)
        self.lstm_cells = nn.ModuleList(nn.LSTMCell(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        channels = (3, *filters)
        self.convlstms = nn.ModuleList(ConvLSTM(a, b, kernel_size, image_size, peepholes)
                                       for a, b in zip(channels[:-1], channels[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm3d(f) for f in filters)
        self.reduce = nn.Conv2d(filters[-1], reduce_channels, kernel_size, padding=kernel_size // 2)
        self.classifier = nn.Linear(lstm_units[-1] + reduce_channels * image_size ** 2, num_classes)
        self.num_frames = num_frames

    def encode_keypoints(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(B, T, K) -> the last LSTM layer's last hidden state (B, units)."""
        states = [None] * len(self.lstm_cells)
        for step in range(keypoints.shape[1]):
            x = keypoints[:, step]
            for index, lstm in enumerate(self.lstm_cells):
                states[index] = lstm(x, states[index])
                x = states[index][0]
        return x

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) scaled to 0..1 -> ConvLSTM + BatchNorm3d per layer, last step, reduce conv,
        flat."""
        x = frames
        for convlstm, norm in zip(self.convlstms, self.norms):
            x = norm(convlstm(x))
        return torch.flatten(self.reduce(x[:, :, -1]), 1)

    def forward(self, keypoints: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes); frames are raw 0..255 values, (B, 3, T, H, W)."""
        features = torch.cat([self.encode_keypoints(keypoints), self.encode_frames(frames / 255.0)], dim=1)
        return self.classifier(features)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def random_batch(batch_size: int, num_classes: int, num_frames: int = 30, image_size: int = 64,
                 keypoint_dim: int = 1662, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random keypoints (B, T, K), raw 0..255 frames (B, 3, T, S, S) as float32, and labels."""
    rng = np.random.default_rng(seed)
    keypoints = rng.normal(size=(batch_size, num_frames, keypoint_dim)).astype("float32")
    frames = rng.integers(0, 256, size=(batch_size, 3, num_frames, image_size, image_size)).astype("float32")
    labels = rng.integers(0, num_classes, batch_size)
    return torch.from_numpy(keypoints), torch.from_numpy(frames), torch.from_numpy(labels)


def _timed(function: Any, steps: int) -> tuple[float, float]:
    """(wall, process CPU) seconds per call: one warm-up call, then the mean of ``steps`` calls."""
    function()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(max(1, steps)):
        function()
    return (time.perf_counter() - wall) / max(1, steps), (time.process_time() - cpu) / max(1, steps)


def measure(batch_size: int = 16, steps: int = 4, num_classes: int = 10,
            threads: int | None = None) -> dict[str, Any]:
    """Training and inference clips/s of the original at the seed shapes: one warm-up, then the mean of
    ``steps``."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = OriginalFused(num_classes=num_classes, **SEED_SHAPES)
    keypoints, frames, labels = random_batch(batch_size, num_classes, **SEED_SHAPES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0.8)
    loss_function = nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad()
        loss_function(model(keypoints, frames), labels).backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.inference_mode():
            model(keypoints, frames)

    load = os.getloadavg()[0]
    model.train()
    train_wall, train_cpu = _timed(train_step, steps)
    model.eval()
    infer_wall, infer_cpu = _timed(infer_step, steps)
    return {"setting": "pytorch", "framework": f"PyTorch {torch.__version__}", "batch_size": batch_size,
            "steps": steps, "load_before": load, "params": count_params(model),
            "threads": f"torch {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}",
            "train_clips_per_s": batch_size / train_wall, "infer_clips_per_s": batch_size / infer_wall,
            "train_cpu_s_per_clip": train_cpu / batch_size, "infer_cpu_s_per_clip": infer_cpu / batch_size}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the original once and print the result (a table line, or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed batches after one warm-up batch")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's own)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    result = measure(args.batch_size, args.steps, threads=args.threads)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(f"{result['framework']} ({result['threads']} threads, load {result['load_before']:.1f}): "
              f"{result['params']:,} parameters, training {result['train_clips_per_s']:.2f} clips/s, "
              f"inference {result['infer_clips_per_s']:.2f} clips/s (batch {args.batch_size}, "
              f"mean of {args.steps} batches)")
    return result


if __name__ == "__main__":
    main()
