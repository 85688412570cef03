"""Networks of the three ISFRNet stages (paper section 3). One import line per module; append yours."""

from isfr.models.stylegan2 import Discriminator, Generator, load_rosinality_generator
