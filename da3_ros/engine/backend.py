"""Backend: what runs the DA3 network inside a Predictor (PyTorch, ONNX Runtime, TensorRT).

A backend takes the preprocessed network input and returns the network's outputs as a
DA3Output, with the official in-network post-processing already applied (sky fill of
METRIC/MONO depth; NESTED alignment). Everything around it (resizing, camera normalisation,
alignment to given extrinsics, numpy conversion) is the Predictor's job and is shared.

Exported graphs (ONNX Runtime, TensorRT) have a fixed (H, W), reference view 'first', no
ray -> pose path and no NESTED models; `GraphBackend` holds the checks and the output mapping
they share.
"""
from __future__ import annotations

import abc

import torch
from torch import Tensor

from da3_ros.errors import ConfigError, InputError
from da3_ros.model import postprocess
from da3_ros.model.camera import cameras_to_pose_encoding
from da3_ros.model.da3 import DA3Output
from da3_ros.model.variants import ModelSpec, NestedSpec

REF_VIEW_STRATEGIES = ('saddle_balanced', 'saddle_sim_range', 'first', 'middle')


class Backend(abc.ABC):
    """Runs one DA3 network.

    name: 'torch', 'onnxruntime' or 'tensorrt'
    spec: the model's ModelSpec / NestedSpec (spec.name is the variant, e.g. 'da3-small')
    device: where `infer` wants its input tensors
    network_hw: fixed (H, W) input size in pixels of an exported graph; None = any multiple of 14
    supports_cameras: camera conditioning (extrinsics + intrinsics inputs) is available
    ref_view_strategies: reference-view strategies it can run (graphs: 'first' only)
    default_ref_view_strategy: the one used when the caller does not choose
    supports_ray_pose / supports_rays: the ray -> pose solver / ray outputs are available
    supports_descriptors: per-view place descriptors from the backbone are available
    """

    name: str
    spec: ModelSpec | NestedSpec
    device: torch.device
    network_hw: tuple[int, int] | None = None
    supports_cameras: bool = False
    ref_view_strategies: tuple[str, ...] = ('first',)
    default_ref_view_strategy: str = 'first'
    supports_ray_pose: bool = False
    supports_rays: bool = False
    supports_descriptors: bool = False

    @property
    def model_name(self) -> str:
        return self.spec.name

    @property
    def is_anyview(self) -> bool:
        """Any-view models (DualDPT head, NESTED) predict poses and intrinsics."""
        return isinstance(self.spec, NestedSpec) or self.spec.head.kind == 'dualdpt'

    @abc.abstractmethod
    def infer(self, images: Tensor, extrinsics: Tensor | None = None,
              intrinsics: Tensor | None = None, *, ref_view_strategy: str = 'first',
              use_ray_pose: bool = False, return_rays: bool = False,
              return_descriptors: bool = False) -> DA3Output:
        """Run the network.

        images: (1, S, 3, H, W) float32 ImageNet-normalised, on `self.device`
        extrinsics: (1, S, 4, 4) float32 T_cam_world normalised as the official API does
            (view 0 identity, translations over the median camera distance), or None
        intrinsics: (1, S, 3, 3) float32 pixels of `images`, or None (both or neither)
        returns DA3Output: depth (1, S, H, W); depth_conf, extrinsics (1, S, 3, 4),
            intrinsics (1, S, 3, 3) for any-view models; sky (1, S, H, W) score for
            METRIC/MONO (depth already sky-filled); scale_factor for NESTED; ray / ray_conf
            with return_rays (backends with supports_rays); descriptor (1, S, C) with
            return_descriptors (supports_descriptors)
        """

    def check_request(self, images: Tensor, extrinsics: Tensor | None,
                      ref_view_strategy: str, use_ray_pose: bool,
                      return_rays: bool = False, return_descriptors: bool = False) -> None:
        """Raise ConfigError / InputError for a request this backend cannot serve."""
        if images.ndim != 5 or images.shape[0] != 1 or images.shape[2] != 3:
            raise InputError(f'images must be (1, S, 3, H, W), got {tuple(images.shape)}')
        if self.network_hw is not None and tuple(images.shape[-2:]) != self.network_hw:
            raise ConfigError(
                f'the {self.name} model was built for {self.network_hw[0]}x{self.network_hw[1]} '
                f'(HxW) but the images preprocess to {images.shape[-2]}x{images.shape[-1]}; '
                f'export/build for that size or change process_res')
        if extrinsics is not None and not self.supports_cameras:
            raise ConfigError(f'camera conditioning is not available on this {self.name} '
                              f'model of {self.model_name}')
        self.check_options(ref_view_strategy, use_ray_pose, return_rays, return_descriptors)

    def check_options(self, ref_view_strategy: str, use_ray_pose: bool = False,
                      return_rays: bool = False, return_descriptors: bool = False) -> None:
        """Raise ConfigError for options this backend cannot run (checked once by the
        Predictor at construction, and again per request)."""
        if ref_view_strategy not in self.ref_view_strategies:
            raise ConfigError(f'reference-view strategy {ref_view_strategy!r} is not available '
                              f'on the {self.name} backend (have {self.ref_view_strategies})')
        if use_ray_pose and not self.supports_ray_pose:
            raise ConfigError(f'use_ray_pose is not available on the {self.name} backend')
        if return_rays and not self.supports_rays:
            raise ConfigError(f'rays are not available on the {self.name} backend')
        if return_descriptors and not self.supports_descriptors:
            raise ConfigError(f'place descriptors are not available on the {self.name} backend')


class GraphBackend(Backend):
    """Shared logic of exported-graph backends (ONNX Runtime, TensorRT).

    The graph's inputs are 'images' (1, S, 3, H, W) and, for files exported with cameras,
    'pose_enc' (1, S, 9) computed here on the host side of the graph. Outputs are named as in
    `onnx_export` ('depth', 'depth_conf', 'extrinsics', 'intrinsics' or 'depth', 'sky').
    """

    ref_view_strategies = ('first',)
    default_ref_view_strategy = 'first'
    supports_ray_pose = False

    def infer(self, images: Tensor, extrinsics: Tensor | None = None,
              intrinsics: Tensor | None = None, *, ref_view_strategy: str = 'first',
              use_ray_pose: bool = False, return_rays: bool = False,
              return_descriptors: bool = False) -> DA3Output:
        """See Backend.infer: the request checked, the graph's inputs built (graph_inputs),
        the graph run (run_graph) and its named outputs read back (to_output)."""
        self.check_request(images, extrinsics, ref_view_strategy, use_ray_pose, return_rays,
                           return_descriptors)
        return self.to_output(self.run_graph(self.graph_inputs(images, extrinsics, intrinsics)))

    @abc.abstractmethod
    def run_graph(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """The raw graph: named inputs ('images' (1, S, 3, H, W), 'pose_enc' (1, S, 9)) ->
        named float32 outputs."""

    def graph_inputs(self, images: Tensor, extrinsics: Tensor | None,
                     intrinsics: Tensor | None) -> dict[str, Tensor]:
        """Named graph inputs: images, and pose_enc (1, S, 9) when cameras are given."""
        if (extrinsics is None) != (intrinsics is None):
            raise InputError('camera conditioning needs both extrinsics and intrinsics')
        feeds = {'images': images.float().contiguous()}
        if extrinsics is not None:
            H, W = images.shape[-2:]
            feeds['pose_enc'] = cameras_to_pose_encoding(
                extrinsics.float(), intrinsics.float(), (H, W)).contiguous()
        return feeds

    def to_output(self, named: dict[str, Tensor]) -> DA3Output:
        """Graph outputs -> DA3Output with the host-side sky fill of METRIC/MONO depth."""
        if self.is_anyview:
            return DA3Output(named['depth'], named['depth_conf'], named['extrinsics'],
                             named['intrinsics'])
        return DA3Output(postprocess.fill_sky(named['depth'], named['sky']), sky=named['sky'])
