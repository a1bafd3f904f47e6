"""
Many features: the discriminant view
====================================

With more than two features, a scatter of two original features may hide the clusters.
``plot_components(..., features="discriminant")`` projects the data and the component
ellipses onto the first two discriminant directions of the fitted mixture
(:func:`~bayes_gmm.discriminant_directions`, after Scrucca's MclustDR): the plane in
which the components differ most. Here on the four iris measurements.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_iris

import bayes_gmm as bg

iris = load_iris(as_frame=True)
X = iris.data                                # DataFrame: names travel into the figures
gm = bg.GaussianMixture(3, n_init=5, random_state=0).fit(X)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
bg.plots.plot_components(X, gm, ax=axes[0])
bg.plots.plot_components(X, gm, ax=axes[1], features="discriminant")
fig.tight_layout()

# %%
# The directions are the eigenvectors of a generalised eigenproblem; the eigenvalues say
# how much each direction separates the components.
directions, eigenvalues = bg.discriminant_directions(bg.GMMParams(
    gm.weights_, gm.means_, gm.covariances_, gm.covariance_type))
print("eigenvalues:", eigenvalues.round(3))
