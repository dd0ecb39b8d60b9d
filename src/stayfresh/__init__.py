"""stayfresh."""
