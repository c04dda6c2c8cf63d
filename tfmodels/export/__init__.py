"""SavedModel export for TF-Serving, and its verification with stock TensorFlow."""

from tfmodels.export.saved_model import export_model
from tfmodels.export.verify import VerificationError, verify_export

__all__ = ["export_model", "verify_export", "VerificationError"]
