"""Running DA3: pre/post-processing around the network and the backends (torch, ONNX Runtime,
TensorRT) behind one Predictor contract. Never imports rclpy."""
