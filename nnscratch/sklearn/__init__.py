"""scikit-learn estimators backed by nnscratch networks (extra ``[sklearn]``).

:class:`NNClassifier` and :class:`NNRegressor` take ``MLPClassifier``'s
parameters, work in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``,
and pass scikit-learn's ``check_estimator``.
"""

from nnscratch.interop._optional import require

# Without scikit-learn, an ImportError that names the extra to install.
require("sklearn", "sklearn")

from nnscratch.sklearn.estimators import NNClassifier, NNRegressor  # noqa: E402

__all__ = ["NNClassifier", "NNRegressor"]
