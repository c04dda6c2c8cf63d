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
from tfmodels.layers.deformable_conv import DeformableConv2D
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
from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.layers.position_embedding import PositionEmbedding
from tfmodels.layers.preprocessing import CaffePreprocessing, imagenet_standardization, tf_preprocessing
from tfmodels.layers.roi_align import RoIAlign
from tfmodels.layers.roi_pooling import RoIPooling
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock, gelu_approximate
