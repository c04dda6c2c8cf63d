"""Reusable Keras layers, blocks and convolution arithmetic shared by the zoo's models."""

from tfmodels.layers.conv_arithmetic import (
    conv_output_size,
    conv_params,
    depthwise_conv_params,
    effective_kernel_size,
    receptive_field,
    separable_conv_params,
    transposed_conv_output_size,
)
from tfmodels.layers.class_token import ClassToken
from tfmodels.layers.deformable_conv import DeformableConv2D
from tfmodels.layers.diffusion_residual_block import DiffusionResidualBlock
from tfmodels.layers.drop_path import DropPath
from tfmodels.layers.erfnet import (
    BLOCK_KINDS,
    bottleneck_block,
    downsampler_block,
    erfnet_block_params,
    non_bottleneck_1d,
    non_bottleneck_block,
    upsampler_block,
)
from tfmodels.layers.gpt_block import GptBlock
from tfmodels.layers.grid_position_embedding import GridPositionEmbedding, interpolate_position_grid
from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.layers.patch_merging import PatchMerging
from tfmodels.layers.patchify import patchify, unpatchify
from tfmodels.layers.position_embedding import PositionEmbedding
from tfmodels.layers.preprocessing import CaffePreprocessing, imagenet_standardization, tf_preprocessing
from tfmodels.layers.random_patch_masking import RandomPatchMasking
from tfmodels.layers.roi_align import RoIAlign
from tfmodels.layers.roi_pooling import RoIPooling
from tfmodels.layers.shifted_window_mask import shifted_window_mask
from tfmodels.layers.spatial_self_attention import SpatialSelfAttention
from tfmodels.layers.swin_block import SwinTransformerBlock
from tfmodels.layers.timestep_embedding import TimestepEmbedding
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock, gelu_approximate
from tfmodels.layers.window_attention import WindowAttention, window_partition, window_reverse
