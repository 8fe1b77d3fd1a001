"""The paper's theory, made explicit: a two-layer linear model in which FT and LP-FT are simulated exactly.

See docs/theory.md for the construction, the derivation of the one-step change of B and what the simulations show.
"""

from pftlab.theory.model import Problem, exact_probe, loss_and_grads, make_problem, population_loss
from pftlab.theory.montecarlo import monte_carlo_losses, sample_inputs
from pftlab.theory.simulate import (
    Trajectory,
    client_mean,
    evaluate,
    linear_response_gap,
    lp_stability_lambda,
    one_step_formula,
    onestep_gap_coefficients,
    run,
    sharpness,
    simulate,
)
from pftlab.theory.sweep import Threshold, find_threshold, sweep

__all__ = [
    "Problem",
    "Threshold",
    "Trajectory",
    "client_mean",
    "evaluate",
    "exact_probe",
    "find_threshold",
    "linear_response_gap",
    "loss_and_grads",
    "lp_stability_lambda",
    "make_problem",
    "monte_carlo_losses",
    "one_step_formula",
    "onestep_gap_coefficients",
    "population_loss",
    "run",
    "sample_inputs",
    "sharpness",
    "simulate",
    "sweep",
]
