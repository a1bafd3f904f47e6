"""The pure, jittable core: covariance families, the mixture density, row chunks, the
prior and the EM driver. Nothing here validates input or warns; the public edge does."""
