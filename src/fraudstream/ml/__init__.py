"""The model lifecycle: datasets, point-in-time training, evaluation, and the model registry."""
