"""A generated inspection data set in the MVTec AD layout: parts with pose, lighting and defects; machine sounds."""
