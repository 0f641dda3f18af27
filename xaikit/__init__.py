"""xaikit: explainability study of a chest X-ray CNN (IG, Grad-CAM, sanity checks)."""
__version__ = "0.1.0"
