"""Networks of DeepNormalize: the U-Net used for G and S, and the discriminator D."""

from dnorm.models.discriminator import Discriminator3D
from dnorm.models.unet import UNet3D, build_generator, build_segmenter, count_parameters

__all__ = ["Discriminator3D", "UNet3D", "build_generator", "build_segmenter", "count_parameters"]
