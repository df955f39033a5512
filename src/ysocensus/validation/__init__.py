"""Validation of the inference model on held-out simulations: calibration (rank-based coverage, SBC),
accuracy, P(young) classification, posterior widths by survey combination (see ``calibration`` for the
metrics and ``run`` for the driver behind ``rule validate``)."""
