"""mgbayes: Bayesian hypothesis testing on electrochemical data."""

__version__ = "0.1.0"
