"""ISA-DRE: any-step density-ratio estimation by secant alignment (arXiv 2509.04852), with baselines.

>>> from mercato.isadre import ISADRE, ISADREConfig, ClassifierDRE, TimeScoreDRE
"""

from mercato.isadre.baselines import ClassifierDRE, TimeScoreDRE
from mercato.isadre.config import (
    ClassifierDREConfig,
    ISADREConfig,
    PathConfig,
    TimeScoreDREConfig,
    TrainConfig,
)
from mercato.isadre.estimator import ISADRE
from mercato.isadre.suite import ProblemSpec, diagnose, make_problem, suite_specs
from mercato.isadre.toy import GaussianPair, ToyPair, correlated_gaussian_pair, toy_pair

__all__ = [
    "ClassifierDRE",
    "ClassifierDREConfig",
    "GaussianPair",
    "ISADRE",
    "ISADREConfig",
    "PathConfig",
    "ProblemSpec",
    "TimeScoreDRE",
    "TimeScoreDREConfig",
    "ToyPair",
    "TrainConfig",
    "correlated_gaussian_pair",
    "diagnose",
    "make_problem",
    "suite_specs",
    "toy_pair",
]
