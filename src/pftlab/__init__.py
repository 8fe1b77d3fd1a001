"""pftlab: personalized fine-tuning in heterogeneous federated learning."""

__version__ = "0.1.0"
