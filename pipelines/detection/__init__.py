"""Object detection data: boxes, anchors, target assignment, NMS, scenes and sources."""
