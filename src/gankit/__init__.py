"""gankit: train, evaluate and compare GAN variants.

Importing the package is cheap on purpose: torch is imported only by the modules that need
it, so `gankit --help` answers at once.
"""

__version__ = "0.1.0"
