"""RiskPulse models: data loaders, training, evaluation, registry, inference, retraining."""
