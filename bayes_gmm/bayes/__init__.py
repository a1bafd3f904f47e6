"""Full Bayes on the same model and prior as MAP-EM: the NumPyro model, the compiled
NUTS/SVI programs, the InferenceData schema, relabelling, diagnostics and SBC."""
