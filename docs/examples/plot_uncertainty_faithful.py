"""
Uncertainty-aware clustering of Old Faithful
============================================

A point estimate says which cluster each eruption belongs to; a posterior says how sure
that is. :class:`~bayes_gmm.BayesianGaussianMixture` fits MAP-EM, then NUTS started at it,
and :func:`~bayes_gmm.plots.plot_uncertainty` shades each point by the entropy of its
posterior membership: the few eruptions between the two regimes stand out.
"""

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()          # (272, 2): eruption length, waiting time (minutes)
bgm = bg.BayesianGaussianMixture(2, num_warmup=200, num_samples=200, num_chains=2,
                                 random_state=0, progress_bar=False).fit(X)

fig = bg.plots.plot_uncertainty(X, bgm, threshold=0.05,   # outline entropy > 0.05 nats
                                feature_names=["eruption (min)", "waiting (min)"])

# %%
# ``predict_proba`` averages the membership over the posterior draws; the most uncertain
# eruptions are those whose probability is furthest from 0 or 1.
proba = bgm.predict_proba(X)
uncertain = abs(proba[:, 0] - 0.5).argsort()[:5]
print("most uncertain rows:", uncertain)
print(proba[uncertain].round(2))
