"""Station-side runtime: preprocessing, ONNX sessions and generation; never imports torch."""
