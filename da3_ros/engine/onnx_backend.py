"""ONNX Runtime backend: an exported da3_ros graph (see onnx_export) behind the Backend contract.

    backend = OnnxBackend('da3-small_280x504.onnx', providers=['CUDAExecutionProvider'])

The graph has a fixed (H, W) and reference view 'first'; a file exported with cameras takes
the pose encoding computed here. Inputs cross to the host as numpy (ONNX Runtime's numpy API).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from da3_ros.engine.backend import GraphBackend
from da3_ros.engine.onnx_runtime import OnnxModel
from da3_ros.model.variants import get_spec


class OnnxBackend(GraphBackend):
    """path: .onnx from export_onnx; providers: ONNX Runtime providers in priority order;
    expect_model: refuse a file of another model (CheckpointError)."""

    name = 'onnxruntime'

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None,
                 expect_model: str | None = None):
        self.model = OnnxModel(path, providers, expect_model=expect_model)
        self.spec = get_spec(self.model.model_name)
        self.device = torch.device('cpu')
        self.network_hw = (self.model.height, self.model.width)
        self.supports_cameras = self.model.with_cameras

    def run_graph(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """See GraphBackend.run_graph; runs on the CPU."""
        pose_enc = feeds.get('pose_enc')
        out = self.model.run(feeds['images'].cpu().numpy(), None if pose_enc is None
                             else pose_enc.cpu().numpy().astype(np.float32))
        return {k: torch.from_numpy(v) for k, v in out.items()}
