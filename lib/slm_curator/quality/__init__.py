"""Model-based quality scoring: labels, a frozen encoder with a linear head, training, the score stage."""
