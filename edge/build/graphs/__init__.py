"""ONNX graphs built directly from checkpoint tensors, one per modality."""
