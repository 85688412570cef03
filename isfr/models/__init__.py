"""Networks of the three ISFRNet stages (paper section 3) and the pipeline that chains them."""

from isfr.models.discriminators import DiscriminatorConfig, PatchDiscriminator
from isfr.models.ifr import IFRConfig, IFRGenerator
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig, composite
from isfr.models.psp import PSP, GradualStyleEncoder, load_irse50_backbone
from isfr.models.sfr import SFRConfig, SFRGenerator, eq1_weight
from isfr.models.stage1 import PSPConfig, StyleGANConfig, build_stage1
from isfr.models.stylegan2 import Discriminator, Generator, load_rosinality_generator

__all__ = [
    "DiscriminatorConfig", "PatchDiscriminator", "IFRConfig", "IFRGenerator", "ISFRNet", "ISFRNetConfig",
    "composite", "PSP", "GradualStyleEncoder", "load_irse50_backbone", "SFRConfig", "SFRGenerator",
    "eq1_weight", "PSPConfig", "StyleGANConfig", "build_stage1", "Discriminator", "Generator",
    "load_rosinality_generator",
]
