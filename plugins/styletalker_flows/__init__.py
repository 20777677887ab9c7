"""Built-in plugin: normalizing flows for the motion prior (none, affine coupling, rational-quadratic spline)."""
