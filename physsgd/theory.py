"""Exact results: Saad-Solla ODEs, closed-form generalisation errors, perceptron learning curves."""
