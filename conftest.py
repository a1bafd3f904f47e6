"""Repository-wide pytest setup (tests/ and the docstring examples in bayes_gmm/)."""

import os

# The suite compiles well over a thousand programs: keep them out of the user's persistent
# compilation cache (tests/test_compilation_cache.py checks the cache in subprocesses of its
# own, with a temporary directory).
os.environ["BAYES_GMM_NO_CACHE"] = "1"
