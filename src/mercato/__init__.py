"""mercato: tested, fast implementations of ten industrial ad-tech and recommendation ML systems."""

__version__ = "0.1.0"
